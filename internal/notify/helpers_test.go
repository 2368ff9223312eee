package notify

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
	"github.com/ivrd/ivrd/internal/testpg"
)

// hit is one request a receiver saw.
type hit struct {
	body       string
	form       url.Values
	query      url.Values
	sig, id    string
	attempt    string
	ctype      string
	method     string
	arrived    time.Time
	verifiedOK bool
	header     http.Header
	gone       <-chan struct{} // closed when the sender hangs up
}

// receiver is a real HTTP server standing in for an app. reply decides each answer (nil: 200).
type receiver struct {
	*httptest.Server
	token string
	reply func(h hit, n int) int // n: how many requests came before this one

	mu   sync.Mutex
	hits []hit
	got  chan hit
}

func newReceiver(t *testing.T, token string, reply func(h hit, n int) int) *receiver {
	t.Helper()
	r := &receiver{token: token, reply: reply, got: make(chan hit, 10000)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		form, _ := url.ParseQuery(string(b))
		h := hit{body: string(b), form: form, query: req.URL.Query(), sig: req.Header.Get(HeaderSignature),
			id: req.Header.Get(HeaderDeliveryID), attempt: req.Header.Get(HeaderAttempt),
			ctype: req.Header.Get("Content-Type"), method: req.Method, arrived: time.Now(), header: req.Header,
			gone: req.Context().Done()}
		h.verifiedOK = Verify(r.token, b, h.sig)
		r.mu.Lock()
		n := len(r.hits)
		r.hits = append(r.hits, h)
		r.mu.Unlock()
		code := 200
		if r.reply != nil {
			code = r.reply(h, n)
		}
		w.WriteHeader(code)
		r.got <- h
	}))
	t.Cleanup(r.Close)
	return r
}

// wait returns the next hit or fails the test after d.
func (r *receiver) wait(t *testing.T, d time.Duration) hit {
	t.Helper()
	select {
	case h := <-r.got:
		return h
	case <-time.After(d):
		t.Fatalf("no notification within %v", d)
		return hit{}
	}
}

func (r *receiver) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

const testToken = "token-0123456789abcdef0123456789ab"

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "ivrd.db")
	}
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// eachStore runs test against a fresh SQLite store and a fresh PostgreSQL store; open opens
// the test's database (again, on every call), closed when the test ends.
func eachStore(t *testing.T, test func(t *testing.T, open func() *store.Store)) {
	opener := func(t *testing.T, open func() (*store.Store, error)) func() *store.Store {
		return func() *store.Store {
			t.Helper()
			st, err := open()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ivrd.db")
		test(t, opener(t, func() (*store.Store, error) { return store.Open(path) }))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testpg.DSN(t)
		test(t, opener(t, func() (*store.Store, error) { return store.OpenPostgres(dsn) }))
	})
}

func tokens(appID string) (string, error) {
	if appID == "APtest" {
		return testToken, nil
	}
	return "", store.ErrNotFound
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testOptions() Options {
	return Options{Log: quietLog(), Tokens: tokens, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
}

// run starts q.Run and stops it (waiting for it) at cleanup or when the returned func is called.
func run(t *testing.T, q *Queue) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
