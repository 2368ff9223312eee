package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivrd/ivrd/internal/client"
)

// app is the user's application, as a real one would be written: it receives ivrd's
// notifications over HTTP (checking their signatures, dropping duplicates) and answers each by
// calling the API. Its flow: Answer → Monitor(monitorMsg); then, when busy is set, Play(playMsg)
// after every block, so the call is never idle until the caller hangs up.
type app struct {
	api        *client.Client
	monitorMsg string
	playMsg    string
	busy       bool // keep the call busy with prompts after Monitor

	srv  *http.Server
	ln   net.Listener
	self string

	mu    sync.Mutex
	calls map[string]*callState // by session

	badSig, dups, unexpected, apiErrors atomic.Int64
	monitoring                          atomic.Int64 // calls whose Monitor is recording and whose call has not ended
	apiFailures                         sync.Map     // status -> count
}

// callState is what the app knows of one call.
type callState struct {
	session, from string
	answerAt      time.Time   // Answer notification
	recordingAt   time.Time   // Monitor's first notification (recording has started)
	blockEnds     []time.Time // arrival of every block-done notification (call ongoing)
	plays         int
	endedAt       time.Time // first notification saying the call ended
	monitorURL    string
	monitorAt     time.Time // arrival of the notification carrying monitor_url
	duration      string    // the final notification's duration field
}

func newApp(monitorMsg, playMsg string, busy bool) (*app, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 1024
	a := &app{monitorMsg: monitorMsg, playMsg: playMsg, busy: busy,
		ln: ln, self: "http://" + ln.Addr().String(), calls: map[string]*callState{}}
	rc := &client.Receiver{Token: func() string { return a.api.Token },
		Handle:       func(n client.Notification) { a.handle(n.Params, n.At) },
		BadSignature: func(*http.Request, []byte) { a.badSig.Add(1) },
		Duplicate:    func(client.Notification) { a.dups.Add(1) }}
	a.api = &client.Client{HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	a.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(ln)
	return a, nil
}

// connect points the app at an ivrd and its credentials there (ivrd starts after the app,
// whose answer URL it is given).
func (a *app) connect(base, appID, token string) {
	a.api.BaseURL, a.api.AppID, a.api.Token = base, appID, token
}

func (a *app) answerURL() string { return a.self + "/answer" }

func (a *app) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
	a.api.HTTP.CloseIdleConnections()
}

func (a *app) handle(p url.Values, now time.Time) {
	sid, block, state := p.Get("session"), p.Get("ivr_block"), p.Get("call_state")
	a.mu.Lock()
	c := a.calls[sid]
	if c == nil {
		c = &callState{session: sid, from: p.Get("from")}
		a.calls[sid] = c
	}
	var next string // block to call next
	ended := state == "ended"
	wasMonitoring := !c.recordingAt.IsZero() && c.endedAt.IsZero() && c.monitorAt.IsZero()
	if ended && c.endedAt.IsZero() {
		c.endedAt = now
	}
	switch {
	case block == "answer" && state == "ringing":
		c.answerAt = now
		next = "monitor"
	case block == "monitor" && p.Get("monitor_url") != "":
		c.monitorURL, c.monitorAt, c.duration = p.Get("monitor_url"), now, p.Get("duration")
		if c.endedAt.IsZero() {
			c.endedAt = now
		}
	case block == "monitor" && state == "ongoing":
		c.recordingAt = now
		c.blockEnds = append(c.blockEnds, now)
		a.monitoring.Add(1)
		if a.busy {
			next = "play"
		}
	case block == "play" && state == "ongoing":
		c.blockEnds = append(c.blockEnds, now)
		next = "play"
	case ended:
		// the caller hung up during a block: nothing more to do
	default:
		a.unexpected.Add(1)
	}
	stillMonitoring := !c.recordingAt.IsZero() && c.endedAt.IsZero() && c.monitorAt.IsZero()
	if next == "play" {
		c.plays++
	}
	a.mu.Unlock()
	if wasMonitoring && !stillMonitoring {
		a.monitoring.Add(-1)
	}
	if next != "" {
		go a.call(sid, next)
	}
}

// call invokes the next block over the API.
func (a *app) call(sid, block string) {
	v := url.Values{"session": {sid}, "notify_url": {a.self + "/n"}}
	path := "middle/" + block
	switch block {
	case "monitor":
		v.Set("msg", a.monitorMsg)
		v.Set("tag", "bench")
	case "play":
		v.Set("msg", a.playMsg)
	}
	st, err := a.api.Block(context.Background(), path, v)
	if err != nil {
		a.apiFail("http: " + err.Error())
		return
	}
	if st != client.StatusOK {
		// error_session_ended is a call hung up meanwhile: not a failure.
		if st != "error_session_ended" && st != "error_invalid_session" {
			a.apiFail(block + ": " + st)
		}
	}
}

func (a *app) apiFail(what string) {
	a.apiErrors.Add(1)
	if len(what) > 120 {
		what = what[:120]
	}
	v, _ := a.apiFailures.LoadOrStore(what, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (a *app) failureSummary() string {
	var parts []string
	a.apiFailures.Range(func(k, v any) bool {
		parts = append(parts, k.(string)+" ×"+itoa(v.(*atomic.Int64).Load()))
		return true
	})
	return strings.Join(parts, "; ")
}

// snapshot copies the calls.
func (a *app) snapshot() map[string]callState {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]callState, len(a.calls))
	for k, c := range a.calls {
		cc := *c
		cc.blockEnds = append([]time.Time(nil), c.blockEnds...)
		out[k] = cc
	}
	return out
}

// countMonitored returns how many calls have had a recording started, and how many of those
// have their monitor_url.
func (a *app) countMonitored() (started, finished int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.calls {
		if !c.recordingAt.IsZero() {
			started++
			if c.monitorURL != "" {
				finished++
			}
		}
	}
	return
}
