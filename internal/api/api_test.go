package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/ivr"
)

// Minimal in-memory parts for the engine behind the HTTP API.
type call struct {
	done chan struct{}
	once sync.Once
}

func (c *call) Answer(context.Context) error { return nil }
func (c *call) Reject(int) error             { c.once.Do(func() { close(c.done) }); return nil }
func (c *call) Play(ctx context.Context, pcm []int16) error {
	select {
	case <-time.After(audio.Duration(len(pcm))):
	case <-ctx.Done():
	case <-c.done:
	}
	return nil
}
func (c *call) Hangup() error         { c.once.Do(func() { close(c.done) }); return nil }
func (c *call) Done() <-chan struct{} { return c.done }
func (c *call) AfterEnd(f func())     { go func() { <-c.done; f() }() }
func (c *call) SetTap(audio.Tap)      {}
func (c *call) OnDTMF(func(rune))     {}
func newCall() *call                  { return &call{done: make(chan struct{})} }

type statusErr string

func (e statusErr) Error() string  { return string(e) }
func (e statusErr) Status() string { return string(e) }

type prompter struct{}

func (prompter) Check(msg string) error {
	if strings.HasPrefix(msg, "<") {
		return statusErr("error_msg_invalid_xml")
	}
	return nil
}
func (prompter) Prepare(ctx context.Context, msg string) ([]int16, error) {
	if msg == "fail" {
		return nil, errors.New("espeak failed")
	}
	if msg == "slow" {
		return make([]int16, 8000), nil // 1 s: keeps the session busy
	}
	return make([]int16, 80), nil
}

type rec struct{}

func (rec) Inbound([]int16, time.Time)       {}
func (rec) Outbound([]int16, time.Time)      {}
func (rec) Finish(time.Time) (string, error) { return "http://x/r.mp3", nil }
func (rec) Pause(time.Time, bool) bool       { return true }
func (rec) Resume(time.Time) bool            { return true }

type recorders struct{}

func (recorders) Start(ivr.RecordingInfo) (ivr.Recording, error) { return rec{}, nil }

type notifier struct{ ch chan url.Values }

func (n notifier) Notify(x ivr.Notification) error {
	checkNotification(x.Params) // against the OpenAPI document's webhooks
	n.ch <- x.Params
	return nil
}

type resolver struct{}

func (resolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if strings.HasSuffix(host, ".invalid") {
		return nil, errors.New("nxdomain")
	}
	if host == "metadata.test" {
		return []string{"169.254.169.254", "fe80::a9fe:a9fe"}, nil
	}
	return []string{"127.0.0.1"}, nil
}

type fixture struct {
	srv *httptest.Server
	e   *ivr.Engine
	n   notifier
}

func newFixture(t *testing.T) *fixture {
	n := notifier{ch: make(chan url.Values, 100)}
	e := ivr.New(ivr.Config{}, ivr.Deps{Prompter: prompter{}, Recorders: recorders{}, Notifier: n, Resolver: resolver{}})
	return newFixtureWith(t, e, n)
}

// newFixtureWith serves e's API; opts complete the Handler (e.g. its Recordings).
func newFixtureWith(t *testing.T, e *ivr.Engine, n notifier, opts ...func(*Handler, *http.ServeMux)) *fixture {
	h := &Handler{Engine: e, Apps: func(id string) (string, error) {
		switch id {
		case "A1":
			return "tok1", nil
		case "A2":
			return "tok2", nil
		case "broken":
			return "", errors.New("db down")
		}
		return "", ErrNoApp
	}}
	mux := http.NewServeMux()
	for _, o := range opts {
		o(h, mux)
	}
	h.Register(mux)
	f := &fixture{srv: httptest.NewServer(validating(t, mux)), e: e, n: n}
	t.Cleanup(f.srv.Close)
	return f
}

// session makes a ringing call for app A1 and returns its session id.
func (f *fixture) session(t *testing.T) (string, *call) {
	c := newCall()
	sid, err := f.e.Incoming(c, "A1", "http://app.test/answer", "+1", "+2")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, sid, "answer")
	return sid, c
}

func (f *fixture) post(t *testing.T, path, body string) string {
	t.Helper()
	st, _ := f.answer(t, path, body)["status"].(string)
	return st
}

// answer posts body to path and returns the whole JSON answer.
func (f *fixture) answer(t *testing.T, path, body string) map[string]any {
	t.Helper()
	res, err := http.Post(f.srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("HTTP %d", res.StatusCode)
	}
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMonitorStatuses reaches every Monitor status that can arise without later features.
func TestMonitorStatuses(t *testing.T) {
	f := newFixture(t)
	long := func(n int) string { return strings.Repeat("a", n) }
	cred := "app_id=A1&access_token=tok1"
	type tc struct {
		name, body, want string
		setup            func(t *testing.T) string // returns a session id to use as {S}
	}
	ringing := func(t *testing.T) string { s, _ := f.session(t); return s }
	cases := []tc{
		{"ok", cred + "&session={S}&notify_url=http://app.test/n", ivr.StatusOK, ringing},
		{"ok with msg and tag", cred + "&session={S}&msg=hello+there&tag=t&notify_url=http%3A%2F%2Fapp.test%2Fn%3Fa%3D1", ivr.StatusOK, ringing},
		{"empty values are absent", cred + "&session={S}&msg=&tag=&monitor_notify_url=&notify_url=http://app.test/n", ivr.StatusOK, ringing},
		{"unknown params ignored", cred + "&session={S}&foo=bar&notify_url=http://app.test/n", ivr.StatusOK, ringing},
		{"bad escape", cred + "&session={S}&msg=%zz&notify_url=http://app.test/n", ivr.StatusMalformedParams, ringing},
		{"bad utf8", cred + "&session={S}&msg=%ff%fe&notify_url=http://app.test/n", ivr.StatusMalformedParams, ringing},
		{"no app_id", "access_token=tok1&session=x", "error_app_id_param_missing", nil},
		{"no access_token", "app_id=A1&session=x", "error_access_token_param_missing", nil},
		{"unknown app", "app_id=ZZ&access_token=tok1&session=x", ivr.StatusInvalidAppID, nil},
		{"wrong token", "app_id=A1&access_token=nope&session=x", ivr.StatusInvalidAccessToken, nil},
		{"store failure", "app_id=broken&access_token=x", ivr.StatusInternal, nil},
		{"no session", cred + "&notify_url=http://app.test/n", "error_session_param_missing", nil},
		{"unknown session", cred + "&session=Snope&notify_url=http://app.test/n", ivr.StatusInvalidSession, nil},
		{"other app's session", "app_id=A2&access_token=tok2&session={S}&notify_url=http://app.test/n", ivr.StatusSessionAccessDenied, ringing},
		{"msg too long", cred + "&session={S}&msg=" + long(501) + "&notify_url=http://app.test/n", ivr.StatusMsgInvalidLength, ringing},
		{"msg 500 ok", cred + "&session={S}&msg=" + long(500) + "&notify_url=http://app.test/n", ivr.StatusOK, ringing},
		{"msg counts characters", cred + "&session={S}&msg=" + strings.Repeat("%E4%BD%A0", 500) + "&notify_url=http://app.test/n", ivr.StatusOK, ringing},
		{"msg bad markup", cred + "&session={S}&msg=%3Cspeech&notify_url=http://app.test/n", "error_msg_invalid_xml", ringing},
		{"msg synthesis fails", cred + "&session={S}&msg=fail&notify_url=http://app.test/n", ivr.StatusMsgCannotConvertText, ringing},
		{"tag too long", cred + "&session={S}&tag=" + long(257) + "&notify_url=http://app.test/n", ivr.StatusTagInvalidLength, ringing},
		{"msg checked before tag", cred + "&session={S}&msg=" + long(501) + "&tag=" + long(257) + "&notify_url=http://app.test/n", ivr.StatusMsgInvalidLength, ringing},
		{"no notify_url", cred + "&session={S}", "error_notify_url_param_missing", ringing},
		{"tag checked before notify_url", cred + "&session={S}&tag=" + long(257), ivr.StatusTagInvalidLength, ringing},
		{"notify_url not http", cred + "&session={S}&notify_url=ftp://app.test/n", ivr.StatusInvalidNotifyURL, ringing},
		{"notify_url relative", cred + "&session={S}&notify_url=/n", ivr.StatusInvalidNotifyURL, ringing},
		{"notify_url too long", cred + "&session={S}&notify_url=http://app.test/" + long(4000), ivr.StatusInvalidNotifyURL, ringing},
		{"notify_url unresolvable", cred + "&session={S}&notify_url=http://nowhere.invalid/n", ivr.StatusUnresolvableNotify, ringing},
		{"monitor_notify_url bad", cred + "&session={S}&notify_url=http://app.test/n&monitor_notify_url=mailto:x", ivr.StatusInvalidNotifyURL, ringing},
		{"session checked before params", cred + "&session=Snope&msg=" + long(501), ivr.StatusInvalidSession, nil},
		{"busy", cred + "&session={S}&notify_url=http://app.test/n", ivr.StatusSessionNotReady, func(t *testing.T) string {
			s := ringing(t)
			if st := f.post(t, "/open/ivr/middle/play", cred+"&session="+s+"&msg=slow&notify_url=http://app.test/p"); st != ivr.StatusOK {
				t.Fatal(st)
			}
			return s
		}},
		{"in progress", cred + "&session={S}&notify_url=http://app.test/n", ivr.StatusMonitorInProgress, func(t *testing.T) string {
			s := ringing(t)
			if st := f.post(t, "/open/ivr/middle/monitor", cred+"&session="+s+"&notify_url=http://app.test/n"); st != ivr.StatusOK {
				t.Fatal(st)
			}
			waitFor(t, f, s, "monitor")
			return s
		}},
		{"after hangup accepted", cred + "&session={S}&notify_url=http://app.test/n", ivr.StatusSessionEnded, func(t *testing.T) string {
			s := ringing(t)
			if st := f.post(t, "/open/ivr/end/hangup", cred+"&session="+s+"&msg=slow"); st != ivr.StatusOK {
				t.Fatal(st)
			}
			return s
		}},
		{"after the call ended", cred + "&session={S}&notify_url=http://app.test/n", ivr.StatusSessionEnded, func(t *testing.T) string {
			s, c := f.session(t)
			c.Hangup()
			waitFor(t, f, s, "answer")
			return s
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if c.setup != nil {
				body = strings.ReplaceAll(body, "{S}", c.setup(t))
			}
			if got := f.post(t, "/open/ivr/middle/monitor", body); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// waitFor drains notifications until session's for block arrives. The notifications of the
// fixture's other sessions (a slow Play's, a Hangup's) may come in between: they are dropped.
func waitFor(t *testing.T, f *fixture, session, block string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-f.n.ch:
			if p.Get("session") == session && p.Get("ivr_block") == block {
				return
			}
		case <-deadline:
			t.Fatalf("no %s notification for %s", block, session)
		}
	}
}

func TestMethodsAndPaths(t *testing.T) {
	f := newFixture(t)
	sid, _ := f.session(t)
	q := "app_id=A1&access_token=tok1&session=" + sid + "&notify_url=http://app.test/n"
	// GET works like POST.
	res, err := http.Get(f.srv.URL + "/open/ivr/middle/monitor?" + q)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if out["status"] != ivr.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatal(out, res.Header)
	}
	for _, m := range []string{"PUT", "DELETE", "PATCH"} {
		req, _ := http.NewRequest(m, f.srv.URL+"/open/ivr/middle/monitor?"+q, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if res.StatusCode != 200 || out["status"] != ivr.StatusInvalidHTTPMethod {
			t.Fatal(m, res.StatusCode, out)
		}
	}
	// A block under the wrong stage does not exist.
	res, _ = http.Post(f.srv.URL+"/open/ivr/end/monitor", "application/x-www-form-urlencoded", strings.NewReader(q))
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatal(res.StatusCode)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("a=1&b=%20x+y", "msg=%E4%BD%A0&tag=")
	f.Add("%zz", "=&&=x")
	f.Add("", "%ff")
	f.Fuzz(func(t *testing.T, query, body string) {
		r := httptest.NewRequest("POST", "/open/ivr/middle/monitor", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		p, err := decode(r)
		if err != nil {
			return
		}
		for k, v := range p {
			if v == "" {
				t.Fatalf("empty value kept for %q", k)
			}
		}
	})
}
