package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/client"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// flakyReceiver is an app's notification endpoint that can refuse connections (its listener
// closed), answer 500, or pass deliveries on to the app; it records every attempt it sees.
type flakyReceiver struct {
	t    *testing.T
	a    *app
	addr string
	fail atomic.Bool // answer 500

	mu       sync.Mutex
	srv      *http.Server
	attempts []attempt
}

// attempt is one delivery attempt that reached the receiver.
type attempt struct {
	at                    time.Time
	id, session, block    string
	state, attemptNo, url string
	code                  int
}

// key names a notification by what it says.
func (a attempt) key() string { return a.block + "/" + a.state }

func newFlakyReceiver(t *testing.T, a *app) *flakyReceiver {
	f := &flakyReceiver{t: t, a: a, addr: freePort(t, "tcp")}
	f.up()
	t.Cleanup(f.down)
	return f
}

func (f *flakyReceiver) url(path string) string { return "http://" + f.addr + path }

// up starts answering again, on the same address.
func (f *flakyReceiver) up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		return
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("receiver: listen again on %s: %v", f.addr, err)
	}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go f.srv.Serve(ln)
}

// down refuses connections until up.
func (f *flakyReceiver) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		f.srv.Close()
		f.srv = nil
	}
}

func (f *flakyReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p, _ := url.ParseQuery(string(body))
	at := attempt{at: time.Now(), id: r.Header.Get("X-Ivrd-Delivery-Id"), session: p.Get("session"), block: p.Get("ivr_block"),
		state: p.Get("call_state"), attemptNo: r.Header.Get("X-Ivrd-Attempt"), url: r.URL.Path}
	rec := &statusRecorder{ResponseWriter: w, code: 200}
	if f.fail.Load() {
		rec.WriteHeader(http.StatusInternalServerError)
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.a.srv.Config.Handler.ServeHTTP(rec, r) // the app's receiver: signature, duplicates
	}
	at.code = rec.code
	f.mu.Lock()
	f.attempts = append(f.attempts, at)
	f.mu.Unlock()
}

func (f *flakyReceiver) log() []attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]attempt(nil), f.attempts...)
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) { s.code = code; s.ResponseWriter.WriteHeader(code) }

// TestNotifyOrderThroughFailures: 20 monitored calls whose callers hang up during a Play
// while the app refuses connections; ivrd is SIGKILLed and restarted meanwhile; then the app
// answers 500 for a while, then 200. Every notification is delivered under one delivery id,
// and a session's notifications are attempted strictly in the order they were queued: never
// an attempt of one while an earlier one is undelivered, never an earlier one again after a
// later one.
func TestNotifyOrderThroughFailures(t *testing.T) {
	runNotifyOrder(t, 20, 12*time.Second, 10*time.Second)
}

func runNotifyOrder(t *testing.T, calls int, refuse, fail time.Duration) {
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	rcv := newFlakyReceiver(t, a)
	const flakyNumber = "+6561230000"
	ivrdCmd(t, "number", "add", "--data", data, "--app", a.id, "--number", flakyNumber, "--notify-url", rcv.url("/answer"))
	p := startIvrd(t, data, "", "")
	a.ivrd = "http://" + p.http
	results, driverErrs := monitoredPlays(t, a, p, rcv, flakyNumber, calls, 8*time.Second, nil)
	rcv.down() // the app is unreachable: callers hang up during the Play
	for _, rc := range results {
		if res := <-rc; !res.Answered {
			t.Fatalf("a call was not answered: %d", res.Status)
		}
	}
	time.Sleep(refuse / 2)
	p.kill()                          // in the middle of the failures
	startIvrd(t, data, p.http, p.sip) // the same ports: the same URLs
	time.Sleep(refuse / 2)
	rcv.fail.Store(true)
	rcv.up()
	time.Sleep(fail)
	rcv.fail.Store(false)

	// Every session owes answer/ringing, monitor/ongoing, play/ended and monitor/ended.
	want := []string{"answer/ringing", "monitor/ongoing", "play/ended", "monitor/ended"}
	// The backoff has grown meanwhile.
	bySession := waitNotified(t, rcv, calls, want, max(90*time.Second, refuse+fail), "after the app recovered")
	if len(bySession) != calls {
		t.Fatalf("%d sessions notified, want %d", len(bySession), calls)
	}
	attempts, fails := 0, 0
	for sid, atts := range bySession {
		sort.SliceStable(atts, func(i, j int) bool { return atts[i].at.Before(atts[j].at) })
		ids := map[string]string{} // notification -> its delivery id
		var order []string         // notifications in the order first attempted
		cur, curOK := "", false
		for _, at := range atts {
			attempts++
			if at.code != 200 {
				fails++
			}
			if prev, ok := ids[at.key()]; ok && prev != at.id {
				t.Errorf("%s: %s delivered under two ids, %s and %s", sid, at.key(), prev, at.id)
			}
			ids[at.key()] = at.id
			if at.key() != cur {
				if cur != "" && !curOK {
					t.Errorf("%s: %s attempted while %s was undelivered", sid, at.key(), cur)
				}
				for _, k := range order {
					if k == at.key() {
						t.Errorf("%s: %s attempted again after a later notification", sid, k)
					}
				}
				order = append(order, at.key())
				cur, curOK = at.key(), false
			}
			curOK = curOK || at.code == 200
		}
		// The answer and the Monitor's start come first (the app needed them to go on), then
		// the Play's end (the call ended during it), then the recording.
		if fmt.Sprint(order) != fmt.Sprint(want) {
			t.Errorf("%s: notifications in the order %v, want %v", sid, order, want)
		}
	}
	t.Logf("%d sessions: %d attempts reached the app, %d answered 500", calls, attempts, fails)
	if fails == 0 {
		t.Error("no attempt met the 500s: the test did not exercise retries after the restart")
	}
	if errs := driverErrs(); len(errs) > 0 {
		t.Errorf("app requests failed: %v", errs)
	}
}

// monitoredPlays places calls to num (routed to a, its notify URLs on rcv) whose callers hang
// up hangupAfter after the answer. The app runs Monitor on each answer, then a Play of 20 s of
// a 2 kHz tone (still playing at the hang-up) once the Monitor has started; seen, if set, sees
// every notification. It returns when every call is playing.
func monitoredPlays(t *testing.T, a *app, p *ivrd, rcv *flakyReceiver, num string, calls int, hangupAfter time.Duration,
	seen func(note)) (results []<-chan testpeer.Result, driverErrs func() []string) {
	t.Helper()
	files := newFileServer(t)
	long := strings.Repeat("<url>"+files.URL+"/tone.wav</url>", 20)
	playing := make(chan string, calls)
	driverErrs = driveApp(t, a, func(n note) (string, url.Values) {
		if seen != nil {
			seen(n)
		}
		sid := n.params.Get("session")
		switch {
		case n.path == "/answer":
			return "middle/monitor", url.Values{"session": {sid}, "notify_url": {rcv.url("/monitor")}}
		case n.path == "/monitor" && n.params.Get("call_state") == "ongoing":
			playing <- sid
			return "middle/play", url.Values{"session": {sid}, "msg": {long}, "notify_url": {rcv.url("/play")}}
		}
		return "", nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	for range calls {
		results = append(results, peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(num, "+"),
			From: callerNum, HangupAfter: hangupAfter, Timeout: 40 * time.Second}))
		time.Sleep(100 * time.Millisecond)
	}
	for i := range calls {
		select {
		case <-playing:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d calls reached their Play: %v", i, calls, driverErrs())
		}
	}
	return results, driverErrs
}

// waitNotified waits until each of calls sessions has had every notification in want (by key)
// answered 200 at rcv, and returns every attempt rcv saw by session.
func waitNotified(t *testing.T, rcv *flakyReceiver, calls int, want []string, within time.Duration, when string) map[string][]attempt {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		bySession := map[string][]attempt{}
		done := 0
		for _, at := range rcv.log() {
			bySession[at.session] = append(bySession[at.session], at)
		}
		for _, atts := range bySession {
			got := map[string]bool{}
			for _, at := range atts {
				if at.code == 200 {
					got[at.key()] = true
				}
			}
			if len(got) == len(want) {
				done++
			}
		}
		if done == calls {
			return bySession
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions got all their notifications within %v %s", done, calls, within, when)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// driveApp plays the app for many calls at once: every notification a receives goes to react,
// which returns the API request to answer it with (path and parameters; "" for none), sent at
// once. It runs until the test ends and returns the failed requests so far.
func driveApp(t *testing.T, a *app, react func(n note) (string, url.Values)) (errs func() []string) {
	var mu sync.Mutex
	var failed []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		api := a.api()
		for {
			var n note
			select {
			case n = <-a.notes:
			case <-stop:
				return
			}
			path, params := react(n)
			if path == "" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			st, err := api.Block(ctx, path, params)
			cancel()
			if err != nil || st != client.StatusOK {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s after %s: %s %v", n.params.Get("session"), n.path, st, err))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), failed...)
	}
}
