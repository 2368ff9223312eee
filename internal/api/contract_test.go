package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/outbound"
	"github.com/ivrd/ivrd/internal/prompt"
)

// tel is an in-memory trunk for the contract test.
type tel struct {
	mu    sync.Mutex
	rooms map[string]bool
}

func (t *tel) Dial(ctx context.Context, dest, callerID string, earlyTo ivr.Call) (ivr.Call, string, error) {
	if dest == "+6590000002" {
		return nil, ivr.DialBusy, nil
	}
	c := newCall()
	return c, ivr.DialAnswered, nil
}
func (t *tel) Bridge(a, b ivr.Call) func() { return func() {} }
func (t *tel) JoinRoom(id string, create bool, c ivr.Call) (func(), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.rooms[id] && !create {
		return nil, ivr.ErrNoRoom
	}
	t.rooms[id] = true
	return func() {}, nil
}
func (t *tel) RoomExists(id string) bool { t.mu.Lock(); defer t.mu.Unlock(); return t.rooms[id] }

// splitPrompter is the real prompt pipeline, except that msgs starting "SYNTHFAIL" go to one
// whose espeak-ng always fails.
type splitPrompter struct{ ok, broken *prompt.Prompter }

func (s splitPrompter) pick(msg string) *prompt.Prompter {
	if strings.HasPrefix(msg, "SYNTHFAIL") {
		return s.broken
	}
	return s.ok
}
func (s splitPrompter) Check(msg string) error { return s.pick(msg).Check(msg) }
func (s splitPrompter) Prepare(ctx context.Context, msg string) ([]int16, error) {
	return s.pick(msg).Prepare(ctx, msg)
}

type contract struct {
	*fixture
	files *httptest.Server
}

func newContract(t *testing.T) *contract {
	ok, err := prompt.New(prompt.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	broken, err := prompt.New(prompt.Options{Espeak: "false"})
	if err != nil {
		t.Fatal(err)
	}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page.mp3":
			w.Write([]byte("<html>not audio</html>"))
		case "/big.wav":
			w.Write([]byte("RIFF"))
			w.Write(make([]byte, 11<<20))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(files.Close)
	n := notifier{ch: make(chan url.Values, 1<<16)} // nobody reads them all; never block the engine
	e := ivr.New(ivr.Config{}, ivr.Deps{Prompter: splitPrompter{ok, broken}, Recorders: recorders{}, Notifier: n,
		Resolver: resolver{}, Telephony: &tel{rooms: map[string]bool{"lobby": true}}, Trunk: true,
		Outbound: outbound.New(outbound.Config{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})})
	f := newFixtureWith(t, e, n)
	return &contract{fixture: f, files: files}
}

// blockInfo describes how to call each block validly.
type blockInfo struct {
	path     string
	session  bool   // names a session
	msgLimit int    // 0: no msg
	notify   string // "required", "optional" or ""
	valid    string // extra valid parameters
	tag      bool
}

var blockTable = map[string]blockInfo{
	"dial":     {"start/dial", false, 1000, "optional", "dest=%2B6590000001", true},
	"play":     {"middle/play", true, 1000, "optional", "", true},
	"gather":   {"middle/gather", true, 1000, "required", "", true},
	"record":   {"middle/record", true, 1000, "required", "", true},
	"monitor":  {"middle/monitor", true, 500, "required", "", true},
	"hold":     {"middle/hold", true, 1000, "", "", false},
	"unhold":   {"middle/unhold", true, 0, "optional", "", true},
	"hangup":   {"end/hangup", true, 1000, "optional", "", true},
	"transfer": {"end/transfer", true, 1000, "optional", "dest=%2B6590000001", true},
}

// TestContractEveryStatus reaches every status string of the spec, for every block that can
// return it, through HTTP against the engine and the real prompt pipeline.
func TestContractEveryStatus(t *testing.T) {
	c := newContract(t)
	cred := "app_id=A1&access_token=tok1"
	reached := map[string]bool{}
	check := func(t *testing.T, block, body, want string) {
		t.Helper()
		got := c.post(t, "/open/ivr/"+blockTable[block].path, body)
		if got != want {
			t.Errorf("%s %s: got %s, want %s", block, body[:min(len(body), 120)], got, want)
		}
		reached[want] = true
	}
	// body builds a request for block on a fresh ringing session (or held, for unhold).
	body := func(t *testing.T, block string, extra string) string {
		b := blockTable[block]
		s := cred
		if b.session {
			sid, _ := c.session(t)
			if block == "unhold" {
				if st := c.post(t, "/open/ivr/middle/hold", cred+"&session="+sid); st != ivr.StatusOK {
					t.Fatal(st)
				}
			}
			s += "&session=" + sid
		}
		if b.valid != "" && !hasParam(extra, strings.SplitN(b.valid, "=", 2)[0]) {
			s += "&" + b.valid
		}
		if b.notify == "required" && !hasParam(extra, "notify_url") {
			s += "&notify_url=http://app.test/n"
		}
		if extra != "" {
			s += "&" + extra
		}
		return s
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	names := make([]string, 0, len(blockTable))
	for n := range blockTable {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		b := blockTable[name]
		t.Run(name, func(t *testing.T) {
			check(t, name, body(t, name, ""), ivr.StatusOK)
			check(t, name, body(t, name, "junk=%zz"), ivr.StatusMalformedParams)
			check(t, name, body(t, name, "x=%C3%28"), ivr.StatusMalformedParams)
			check(t, name, "access_token=tok1", ivr.Missing("app_id"))
			check(t, name, "app_id=A1", ivr.Missing("access_token"))
			check(t, name, "app_id=A9&access_token=tok1", ivr.StatusInvalidAppID)
			check(t, name, "app_id=A1&access_token=bad", ivr.StatusInvalidAccessToken)
			check(t, name, "app_id=broken&access_token=x", ivr.StatusInternal)
			if b.session {
				check(t, name, cred, ivr.Missing("session"))
				check(t, name, cred+"&session=Snope", ivr.StatusInvalidSession)
				sid, call := c.session(t)
				check(t, name, "app_id=A2&access_token=tok2&session="+sid, ivr.StatusSessionAccessDenied)
				if st := c.post(t, "/open/ivr/middle/play", cred+"&session="+sid+"&msg=slow&notify_url=http://app.test/p"); st != ivr.StatusOK {
					t.Fatal(st)
				}
				busy := strings.Replace(body(t, name, ""), "session=", "old=", 1) + "&session=" + sid
				if name == "hangup" {
					check(t, name, busy, ivr.StatusSessionNotReady) // unless forced:
					busy += "&force=enabled"                        // accepted at any moment
					check(t, name, busy, ivr.StatusOK)
				} else {
					check(t, name, busy, ivr.StatusSessionNotReady)
				}
				call.Hangup()
				time.Sleep(20 * time.Millisecond)
				ended := strings.Replace(body(t, name, ""), "session=", "old=", 1) + "&session=" + sid
				check(t, name, ended, ivr.StatusSessionEnded)
			}
			if b.msgLimit > 0 {
				check(t, name, body(t, name, "msg="+long(b.msgLimit+1)), ivr.StatusMsgInvalidLength)
				check(t, name, body(t, name, "msg="+url.QueryEscape("<speech>x")), "error_msg_invalid_xml")
				check(t, name, body(t, name, "msg="+url.QueryEscape(`<speech language="klingon">x</speech>`)), "error_msg_invalid_language")
				check(t, name, body(t, name, "msg="+url.QueryEscape(`<speech gender="other">x</speech>`)), "error_msg_invalid_gender")
				check(t, name, body(t, name, "msg="+url.QueryEscape(`<url>gopher://x/a.mp3</url>`)), "error_msg_invalid_url")
				check(t, name, body(t, name, "msg="+url.QueryEscape(`<url>`+c.files.URL+`/none.mp3</url>`)), "error_msg_download_failed")
				check(t, name, body(t, name, "msg="+url.QueryEscape(`<url>`+c.files.URL+`/page.mp3</url>`)), "error_msg_invalid_file_format")
				check(t, name, body(t, name, "msg="+url.QueryEscape(`<url>`+c.files.URL+`/big.wav</url>`)), "error_msg_invalid_file_size")
				check(t, name, body(t, name, "msg=SYNTHFAIL"), ivr.StatusMsgCannotConvertText)
			}
			if b.tag {
				check(t, name, body(t, name, "tag="+long(257)), ivr.StatusTagInvalidLength)
			}
			switch b.notify {
			case "required":
				check(t, name, strings.Replace(body(t, name, ""), "notify_url=", "x=", 1), ivr.Missing("notify_url"))
				fallthrough
			case "optional":
				check(t, name, body(t, name, "notify_url=ftp://x/"), ivr.StatusInvalidNotifyURL)
				check(t, name, body(t, name, "notify_url=http://host.invalid/"), ivr.StatusUnresolvableNotify)
				// Where ivrd may not connect (the outbound policy): a name resolving only to
				// metadata addresses, a denied address, a link-local literal.
				check(t, name, body(t, name, "notify_url=http://metadata.test/n"), ivr.StatusInvalidNotifyURL)
				check(t, name, body(t, name, "notify_url=http://127.0.0.2:9/n"), ivr.StatusInvalidNotifyURL)
				check(t, name, body(t, name, "notify_url="+url.QueryEscape("http://[fe80::1]/n")), ivr.StatusInvalidNotifyURL)
			}
		})
	}
	// Block-specific statuses.
	specific := []struct{ block, extra, want string }{
		{"dial", "dest=", ivr.Missing("dest")},
		{"dial", "dest=6590000001", ivr.StatusDestInvalid},
		{"dial", "dest=room:abc", ivr.StatusDestInvalid},
		{"dial", "caller_id=abc", ivr.StatusCallerIDInvalid},
		{"dial", "max_duration=0", ivr.StatusInvalidMaxDur},
		{"dial", "max_duration=ten", ivr.StatusInvalidMaxDur},
		{"record", "max_duration=-5", ivr.StatusInvalidMaxDur},
		{"gather", "max_digits=256", ivr.StatusInvalidMaxDigits},
		{"gather", "max_digits=x", ivr.StatusInvalidMaxDigits},
		{"gather", "timeout=0", ivr.StatusInvalidTimeout},
		{"gather", "attempts=0", ivr.StatusInvalidAttempts},
		{"transfer", "dest=", ivr.Missing("dest")},
		{"transfer", "dest=12345", ivr.StatusDestInvalid},
		{"transfer", "dest=room:nosuch", ivr.StatusInvalidRoom},
		{"transfer", "dest=room:bad%20id", ivr.StatusInvalidRoom},
		{"transfer", "dest=room:lobby", ivr.StatusOK},
		{"transfer", "dest=room:", ivr.StatusOK},
		{"transfer", "caller_id=%2B65", ivr.StatusCallerIDInvalid},
		{"transfer", "on_failure=retry", ivr.StatusOnFailureInvalid},
		{"transfer", "on_failure=continue", ivr.StatusOK},
		{"monitor", "monitor_notify_url=nope", ivr.StatusInvalidNotifyURL},
	}
	for _, s := range specific {
		check(t, s.block, body(t, s.block, s.extra), s.want)
	}
	sid, _ := c.session(t)
	check(t, "unhold", cred+"&session="+sid, ivr.StatusSessionNotOnHold)
	check(t, "monitor", cred+"&session="+sid+"&notify_url=http://app.test/m", ivr.StatusOK)
	time.Sleep(20 * time.Millisecond)
	check(t, "monitor", cred+"&session="+sid+"&notify_url=http://app.test/m", ivr.StatusMonitorInProgress)
	req, _ := http.NewRequest("PUT", c.srv.URL+"/open/ivr/middle/play?"+cred, nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatal(err)
	} else {
		res.Body.Close()
		reached[ivr.StatusInvalidHTTPMethod] = true
	}

	// The concurrent call limit (a separate engine with a limit of one call).
	lim := ivr.New(ivr.Config{MaxCallsPerApp: 1}, ivr.Deps{Prompter: prompter{}, Recorders: recorders{}, Notifier: c.n, Telephony: &tel{rooms: map[string]bool{}}, Trunk: true})
	if _, err := lim.Incoming(newCall(), "A1", "", "+1", "+2"); err != nil {
		t.Fatal(err)
	}
	if st := lim.Handle(context.Background(), "A1", "dial", ivr.Params{"dest": "+6590000001"}).Status; st != ivr.StatusCallLimitReached {
		t.Fatal(st)
	}
	reached[ivr.StatusCallLimitReached] = true

	// The per-app request rate (--api-rate 1 --api-burst 2): counted after the credentials,
	// per app; the third request of A1 at once is refused, A2 is not affected.
	limited := &Handler{Engine: c.e, Apps: func(id string) (string, error) {
		return map[string]string{"A1": "tok1", "A2": "tok2"}[id], nil
	}, Limit: NewLimiter(RateLimit{Rate: 1, Burst: 2, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})}
	defer limited.Limit.Close()
	lmux := http.NewServeMux()
	limited.Register(lmux)
	lsrv := httptest.NewServer(validating(t, lmux))
	defer lsrv.Close()
	for i, want := range []string{ivr.StatusInvalidAccessToken, ivr.StatusInvalidAccessToken, ivr.StatusInvalidAccessToken,
		ivr.StatusInvalidSession, ivr.StatusInvalidSession, ivr.StatusRateLimitExceeded, ivr.StatusRateLimitExceeded} {
		tok := "tok1"
		if i < 3 {
			tok = "bad" // refused before the rate is counted
		}
		got := (&fixture{srv: lsrv}).post(t, "/open/ivr/middle/play", "app_id=A1&access_token="+tok+"&session=Snope")
		if got != want {
			t.Errorf("rate-limited request %d: got %s, want %s", i, got, want)
		}
		reached[got] = true
	}
	if got := (&fixture{srv: lsrv}).post(t, "/open/ivr/middle/play", "app_id=A2&access_token=tok2&session=Snope"); got != ivr.StatusInvalidSession {
		t.Errorf("another app's request: got %s, want %s", got, ivr.StatusInvalidSession)
	}

	// Every status of the spec was reached.
	for _, st := range []string{ivr.StatusOK, ivr.StatusRateLimitExceeded, ivr.StatusInvalidHTTPMethod, ivr.StatusMalformedParams, ivr.StatusInvalidAccessToken,
		ivr.StatusInvalidAppID, ivr.StatusInternal, ivr.StatusInvalidSession, ivr.StatusSessionAccessDenied, ivr.StatusSessionEnded,
		ivr.StatusSessionNotReady, ivr.StatusMsgInvalidLength, ivr.StatusMsgCannotConvertText, "error_msg_download_failed",
		"error_msg_invalid_file_format", "error_msg_invalid_file_size", "error_msg_invalid_url", "error_msg_invalid_language",
		"error_msg_invalid_gender", "error_msg_invalid_xml", ivr.StatusTagInvalidLength, ivr.StatusInvalidNotifyURL,
		ivr.StatusUnresolvableNotify, ivr.StatusDestInvalid, ivr.StatusCallerIDInvalid, ivr.StatusInvalidMaxDur,
		ivr.StatusInvalidMaxDigits, ivr.StatusInvalidTimeout, ivr.StatusInvalidAttempts, ivr.StatusOnFailureInvalid,
		ivr.StatusInvalidRoom, ivr.StatusMonitorInProgress, ivr.StatusSessionNotOnHold, ivr.StatusCallLimitReached,
		ivr.StatusDestNotSupported} {
		if !reached[st] && st != ivr.StatusDestNotSupported {
			t.Errorf("status %s never reached", st)
		}
	}
	// Without a trunk, numbers cannot be dialled or transferred to.
	noTrunk := ivr.New(ivr.Config{}, ivr.Deps{Prompter: prompter{}, Recorders: recorders{}, Notifier: c.n})
	if st := noTrunk.Handle(context.Background(), "A1", "dial", ivr.Params{"dest": "+6590000001"}).Status; st != ivr.StatusDestNotSupported {
		t.Fatal(st)
	}
}

// hasParam reports whether the form string q sets name.
func hasParam(q, name string) bool {
	v, err := url.ParseQuery(q)
	return err == nil && v.Has(name)
}
