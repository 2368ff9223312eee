package console

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/notify"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
)

// fakeLive stands in for the engine's live calls.
type fakeLive struct {
	mu    sync.Mutex
	calls []ivr.LiveCall
}

func (f *fakeLive) Live(appID string) []ivr.LiveCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ivr.LiveCall
	for _, c := range f.calls {
		if appID == "" || c.AppID == appID {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeLive) set(calls ...ivr.LiveCall) {
	f.mu.Lock()
	f.calls = calls
	f.mu.Unlock()
}

// rig is a console over real parts: a SQLite store, a recordings catalog over files on disk,
// the notification queue (not running), behind a real HTTP server. Apps AP1 and AP2 exist;
// the demo is AP1's.
type rig struct {
	t     *testing.T
	c     *Console
	srv   *httptest.Server
	st    *store.Store
	live  *fakeLive
	idx   *recording.MemIndex
	blobs *blob.Local
	cat   *recording.Catalog
	mu    sync.Mutex
	token map[string]string
}

const testPassword = "operator secret"

func newRig(t *testing.T, password string) *rig {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "ivrd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{t: t, st: st, live: &fakeLive{}, idx: &recording.MemIndex{}, token: map[string]string{"AP1": "token-one", "AP2": "token-two"}}
	r.blobs = &blob.Local{Dir: filepath.Join(dir, "recordings")}
	if r.cat, err = recording.NewCatalog(recording.CatalogConfig{Index: r.idx, Blobs: r.blobs}); err != nil {
		t.Fatal(err)
	}
	tokens := func(app string) (string, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if tok, ok := r.token[app]; ok {
			return tok, nil
		}
		return "", store.ErrNotFound
	}
	q := notify.New(st, notify.Options{Tokens: tokens, Log: slog.New(slog.DiscardHandler)})
	r.c, err = New(Config{Store: st, Live: r.live, Recordings: r.cat, Outbox: q, Token: tokens, Secret: testSecret,
		Password: password, Demo: &Demo{AppID: "AP1", Number: "100", SIP: "127.0.0.1:5060"}})
	if err != nil {
		t.Fatal(err)
	}
	r.c.failDelay = 0
	mux := http.NewServeMux()
	r.c.Register(mux)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// rotate gives app a new token, as `ivrd app rotate-token` does.
func (r *rig) rotate(app string) {
	r.mu.Lock()
	r.token[app] += "-rotated"
	r.mu.Unlock()
}

// addRecording stores a recording (a file of body) of app in session.
func (r *rig) addRecording(id, app, session, body string) {
	r.t.Helper()
	src := filepath.Join(r.t.TempDir(), id)
	if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := r.blobs.PutFile(id+".mp3", src); err != nil {
		r.t.Fatal(err)
	}
	r.idx.AddSession(session, app)
	if err := r.idx.Put(recording.Entry{ID: id, AppID: app, SessionID: session, Kind: recording.KindMonitor, Started: time.Now(),
		Duration: 2 * time.Second, Size: int64(len(body)), Channels: 1, Key: id + ".mp3"}); err != nil {
		r.t.Fatal(err)
	}
}

// browser is a client with its own cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	r    *rig
	c    *http.Client
	last string // the last page's body
}

func (r *rig) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: r.t, r: r, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// answer is one response.
type answer struct {
	code int
	loc  string
	body string
	h    http.Header
}

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b.last = string(body)
	return answer{code: res.StatusCode, loc: res.Header.Get("Location"), body: string(body), h: res.Header}
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.r.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form; csrf "" takes the token of the last page.
func (b *browser) post(path string, form url.Values) answer {
	b.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf())
	}
	req, _ := http.NewRequest(http.MethodPost, b.r.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf is the CSRF token in the last page.
func (b *browser) csrf() string {
	m := csrfField.FindStringSubmatch(b.last)
	if m == nil {
		return ""
	}
	return m[1]
}

// signIn signs in as an app (secret: its token) or as the operator (app ""), and fails the
// test unless it works.
func (b *browser) signIn(app, secret string) {
	b.t.Helper()
	if a := b.login(app, secret); a.code != http.StatusSeeOther || a.loc != Prefix {
		b.t.Fatalf("sign-in as %q: %d %s\n%s", app, a.code, a.loc, a.body)
	}
}

func (b *browser) login(app, secret string) answer {
	b.t.Helper()
	b.get(loginPath)
	f := url.Values{"mode": {roleApp}, "app_id": {app}, "access_token": {secret}}
	if app == "" {
		f = url.Values{"mode": {roleOperator}, "password": {secret}}
	}
	return b.post(loginPath, f)
}

func (b *browser) json(path string, v any) int {
	b.t.Helper()
	a := b.get(path)
	if a.code == http.StatusOK {
		if err := json.Unmarshal([]byte(a.body), v); err != nil {
			b.t.Fatalf("%s: %v: %s", path, err, a.body)
		}
	}
	return a.code
}
