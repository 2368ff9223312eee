// Package demo is a small call-recording application that ships inside ivrd, so that a new user
// can call in with any softphone and get an MP3 of the call with nothing else to write. It is an
// ordinary API client: it receives notifications over HTTP and answers them by calling ivrd's
// /open/ivr API over HTTP, exactly as a user's own application would.
//
// Flow: Answer → Monitor ("this call is recorded") → Play (instructions) → wait → Hangup.
// Finished recordings are listed at /demo/.
package demo

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/client"
)

// App is the demo application.
type App struct {
	API    string // ivrd's base URL, e.g. http://127.0.0.1:8080
	AppID  string
	Token  string
	Self   string        // this app's base URL (where notifications go), e.g. http://127.0.0.1:8080/demo
	Listen time.Duration // how long the caller may speak before the goodbye (default 20 s)
	Log    *slog.Logger
	Client *http.Client

	mu         sync.Mutex
	recordings []recording
}

type recording struct {
	At      time.Time
	From    string
	Session string
	URL     string
}

// NotifyPath is where the demo app receives its notifications, on ivrd's own listener.
const NotifyPath = "/demo/notify"

// Register mounts the app under /demo/ on mux.
func (a *App) Register(mux *http.ServeMux) {
	rc := &client.Receiver{Token: func() string { return a.Token }, Handle: func(n client.Notification) { go a.next(n.Params) }}
	mux.Handle("POST "+NotifyPath, rc)
	mux.HandleFunc("GET /demo/{$}", a.page)
}

// next sends the next block of the flow.
func (a *App) next(p url.Values) {
	sid, state := p.Get("session"), p.Get("call_state")
	switch {
	case p.Get("monitor_url") != "":
		a.mu.Lock()
		a.recordings = append(a.recordings, recording{At: time.Now(), From: p.Get("from"), Session: sid, URL: p.Get("monitor_url")})
		a.mu.Unlock()
		a.log().Info("demo: recording ready", "session", sid, "from", p.Get("from"), "monitor_url", p.Get("monitor_url"))
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
	c := &client.Client{BaseURL: a.API, AppID: a.AppID, Token: a.Token, HTTP: a.Client}
	st, err := c.Block(context.Background(), block, v)
	if err != nil {
		a.log().Error("demo: api", "block", block, "err", err)
		return
	}
	a.log().Info("demo: api", "block", block, "session", sid, "status", st)
}

var pageTmpl = template.Must(template.New("p").Parse(`<!doctype html><title>ivrd demo</title>
<h1>ivrd demo: recorded calls</h1>
{{if not .}}<p>No recordings yet. Call the demo number with a SIP phone.</p>{{end}}
<ul>{{range .}}<li>{{.At.Format "2006-01-02 15:04:05"}} from {{.From}}: <audio controls src="{{.URL}}"></audio> <a href="{{.URL}}">MP3</a></li>{{end}}</ul>`))

func (a *App) page(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	recs := append([]recording(nil), a.recordings...)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, recs); err != nil {
		fmt.Fprintln(w, err)
	}
}

func (a *App) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}
