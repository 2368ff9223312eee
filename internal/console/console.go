// Package console is ivrd's web console at /console/: live calls, each session's timeline
// (its blocks and its notifications with every delivery attempt), recordings with a player
// and a waveform, the notification outbox, and the built-in demo. It is rendered on the
// server (html/template) with a little JavaScript (polling the live calls, drawing
// waveforms); templates and static files are embedded.
//
// An app signs in with its app_id and access_token and sees its own calls only; the
// operator signs in with --console-password and sees every app. The session is a cookie
// signed by the server (HttpOnly, SameSite=Strict, Secure over https); every POST carries
// the session's CSRF token; failed sign-ins are slowed per client address (throttle.go).
package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
)

// Store is what the console reads of the database (store.Store).
type Store interface {
	RecentSessions(appID string, limit, offset int) ([]store.SessionRow, error)
	Session(id string) (store.SessionRow, error)
	SessionEvents(id string) ([]store.SessionEvent, error)
	ListOutbox(f store.OutboxFilter) ([]store.OutboxItem, error)
	OutboxAttempts(outboxID int64) ([]store.OutboxAttempt, error)
}

// Live is the engine's view of the calls in progress (ivr.Engine).
type Live interface {
	Live(appID string) []ivr.LiveCall
}

// Recordings is the catalog of stored recordings (recording.Catalog): the console lists,
// plays and deletes through it, as the API does. appID "" is the operator: any app.
type Recordings interface {
	List(f recording.Filter) ([]recording.Entry, int, error)
	Open(ctx context.Context, appID, id string) (recording.Entry, *blob.Object, error)
	Delete(appID, id string) error
}

// Outbox retries notifications (notify.Queue).
type Outbox interface {
	RetryNow(id int64, appID string) error
}

// Demo describes the built-in demo app, when it is on.
type Demo struct {
	AppID  string
	Number string // the number routed to it
	SIP    string // ivrd's SIP address, to call it at
}

// Config configures a Console.
type Config struct {
	Store      Store
	Live       Live
	Recordings Recordings
	Outbox     Outbox
	// Token returns an app's access token (an error wrapping store.ErrNotFound for an unknown
	// app): apps sign in with it.
	Token func(appID string) (string, error)
	// Secret is the data directory's secret; the session cookies' key is derived from it.
	Secret []byte
	// Password is the operator's (--console-password); "" turns operator sign-in off.
	Password string
	Demo     *Demo          // nil: no demo
	Secure   bool           // cookies are Secure (the console is reached over https)
	Zone     *time.Location // times are shown in it (--tz)
	Log      *slog.Logger
}

// Console serves the console. Make it with New.
type Console struct {
	cfg      Config
	keys     keyring
	throttle *throttle
	pages    pages
	log      *slog.Logger
	now      func() time.Time
	// failDelay is how long a failed sign-in's answer is held back (on top of the throttle).
	failDelay time.Duration
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New makes a Console.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil || cfg.Live == nil || cfg.Recordings == nil || cfg.Outbox == nil || cfg.Token == nil {
		return nil, errors.New("console: needs a store, the live calls, the recordings, the outbox and the apps' tokens")
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("console: needs a secret of at least 16 bytes")
	}
	if cfg.Zone == nil {
		cfg.Zone = ivr.DefaultZone
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := parsePages(cfg.Zone)
	if err != nil {
		return nil, err
	}
	return &Console{cfg: cfg, keys: newKeyring(cfg.Secret), throttle: newThrottle(), pages: p, log: log,
		now: time.Now, failDelay: 300 * time.Millisecond}, nil
}

// Paths of the console.
const (
	Prefix    = "/console/"
	loginPath = Prefix + "login"
	demoPath  = Prefix + "demo"
)

// Register mounts the console under Prefix on mux, and /demo/ as a redirect to its demo page.
func (c *Console) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	mux.Handle("GET "+Prefix+"static/{file}", secured(files)) // files only: no listing
	mux.Handle("GET /console", http.RedirectHandler(Prefix, http.StatusSeeOther))
	mux.Handle("GET /demo/{$}", http.RedirectHandler(demoPath, http.StatusSeeOther))
	mux.Handle("GET /demo", http.RedirectHandler(demoPath, http.StatusSeeOther))
	mux.Handle("GET "+loginPath, secured(http.HandlerFunc(c.loginForm)))
	mux.Handle("POST "+loginPath, secured(http.HandlerFunc(c.login)))
	mux.Handle("POST "+Prefix+"logout", c.action(c.logout))
	mux.Handle("GET "+Prefix+"{$}", c.page(c.livePage))
	mux.Handle("GET "+Prefix+"live.json", c.json(c.liveJSON))
	mux.Handle("GET "+Prefix+"sessions", c.page(c.sessionsPage))
	mux.Handle("GET "+Prefix+"sessions/{id}", c.page(c.timelinePage))
	mux.Handle("GET "+Prefix+"recordings", c.page(c.recordingsPage))
	mux.Handle("GET "+Prefix+"recordings/{id}/audio", c.page(c.audio))
	mux.Handle("POST "+Prefix+"recordings/{id}/delete", c.action(c.deleteRecording))
	mux.Handle("GET "+Prefix+"outbox", c.page(c.outboxPage))
	mux.Handle("POST "+Prefix+"outbox/{id}/retry", c.action(c.retry))
	mux.Handle("GET "+demoPath, c.page(c.demoPage))
	mux.Handle(Prefix, secured(http.NotFoundHandler()))
}

// secured sets the headers every console answer carries: no framing, no sniffing, only the
// console's own scripts, styles and media, nothing cached.
func secured(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
			hd.Set("Cache-Control", "no-store")
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		h.ServeHTTP(w, r)
	})
}

// maxForm bounds a POST's body: the console's forms are a few fields.
const maxForm = 64 << 10

type handlerFunc func(w http.ResponseWriter, r *http.Request, s session)

// session is a request's console session: who it acts for, and its ticket.
type session struct {
	principal
	t ticket
}

// page serves GETs for signed-in principals; others are sent to the sign-in form, which
// brings them back here.
func (c *Console) page(h handlerFunc) http.Handler {
	return c.guard(h, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	})
}

// json serves a JSON endpoint for signed-in principals (401 for others).
func (c *Console) json(h handlerFunc) http.Handler {
	return c.guard(h, false, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"not signed in"}`, http.StatusUnauthorized)
	})
}

// action serves POSTs of signed-in principals that carry their session's CSRF token.
func (c *Console) action(h handlerFunc) http.Handler {
	return c.guard(h, true, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not signed in", http.StatusUnauthorized)
	})
}

// guard serves h to signed-in principals (whose POST carries the CSRF token, with csrf),
// and answers the others with refuse.
func (c *Console) guard(h handlerFunc, csrf bool, refuse http.HandlerFunc) http.Handler {
	return secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		switch {
		case !s.signedIn():
			refuse(w, r)
		case csrf && !c.csrfOK(r, s.t):
			http.Error(w, "invalid or missing CSRF token: reload the page", http.StatusForbidden)
		default:
			h(w, r, s)
		}
	}))
}

// csrfOK checks a POST: its form's CSRF token is the session's, and a browser's Origin, when
// sent, is this host.
func (c *Console) csrfOK(r *http.Request, t ticket) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return c.keys.checkCSRF(t.Nonce, r.PostFormValue("csrf"))
}
