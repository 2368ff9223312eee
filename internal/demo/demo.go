// Package demo is a small call-recording application that ships inside ivrd, so that a new user
// can call in with any softphone and get an MP3 of the call with nothing else to write. It is an
// ordinary API client: it receives notifications over HTTP and answers them by calling ivrd's
// /open/ivr API over HTTP, exactly as a user's own application would.
//
// Flow: Answer → Monitor ("this call is recorded") → Play (instructions) → wait → Hangup.
// Its recordings are the recordings catalog's recordings of its app, like any app's: the
// console's demo page (/console/demo, behind the console's sign-in) lists them.
package demo

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ivrd/ivrd/internal/client"
)

// App is the demo application.
type App struct {
	API    string // ivrd's base URL, e.g. http://127.0.0.1:8080
	AppID  string
	Token  func() string // the app's current access token
	Self   string        // this app's base URL (where notifications go), e.g. http://127.0.0.1:8080/demo
	Listen time.Duration // how long the caller may speak before the goodbye (default 20 s)
	Log    *slog.Logger  // required
	Client *http.Client
}

// NotifyPath is where the demo app receives its notifications, on ivrd's own listener. A
// number whose stored notify URL is this path alone (IsRoute) is routed to the demo on the
// listener ivrd has now, whatever its address and port.
const NotifyPath = "/demo/notify"

// IsRoute reports whether a number's stored notify URL routes it to the built-in demo.
func IsRoute(notifyURL string) bool { return notifyURL == NotifyPath }

// IsOldRoute reports whether notifyURL is how an ivrd before the console stored the demo's
// route: an absolute URL of its own NotifyPath, which kept the address of the start that made
// it (a later start on another port left the demo number ringing forever).
func IsOldRoute(notifyURL string) bool {
	u, err := url.Parse(notifyURL)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Path == NotifyPath &&
		u.RawQuery == "" && u.User == nil
}

// Register mounts the app's notification receiver on mux.
func (a *App) Register(mux *http.ServeMux) {
	rc := &client.Receiver{Token: a.Token, Handle: func(n client.Notification) { go a.next(n.Params) }}
	mux.Handle("POST "+NotifyPath, rc)
}

// next sends the next block of the flow.
func (a *App) next(p url.Values) {
	sid, state := p.Get("session"), p.Get("call_state")
	switch {
	case p.Get("monitor_url") != "":
		a.Log.Info("demo: recording ready", "session", sid, "from", p.Get("from"))
	case state == "ended":
	case p.Get("ivr_block") == "answer":
		a.call("middle/monitor", sid, url.Values{"msg": {"Hello. This call is recorded."}})
	case p.Get("ivr_block") == "monitor":
		a.call("middle/play", sid, url.Values{"msg": {"Please say something. The call will end in a few seconds."}})
	case p.Get("ivr_block") == "play":
		listen := a.Listen
		if listen <= 0 {
			listen = 20 * time.Second
		}
		time.Sleep(listen)
		a.call("end/hangup", sid, url.Values{"msg": {"Thank you. Goodbye."}})
	}
}

func (a *App) call(block, sid string, v url.Values) {
	v.Set("session", sid)
	v.Set("notify_url", a.Self+"/notify")
	c := &client.Client{BaseURL: a.API, AppID: a.AppID, Token: a.Token(), HTTP: a.Client}
	st, err := c.Block(context.Background(), block, v)
	if err != nil {
		a.Log.Error("demo: api", "block", block, "err", err)
		return
	}
	a.Log.Info("demo: api", "block", block, "session", sid, "status", st)
}
