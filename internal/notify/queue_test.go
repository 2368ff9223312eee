package notify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

func TestDeliverySignedWithURLParams(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, nil)
	q := New(st, testOptions())
	run(t, q)
	target := rcv.URL + "/hook?app_ref=42&tag=fromurl"
	if err := q.Notify("APtest", target, url.Values{"ivr_block": {"play"}, "tag": {"own"}, "session": {"S1"}}); err != nil {
		t.Fatal(err)
	}
	h := rcv.wait(t, 5*time.Second)
	if h.method != http.MethodPost || h.ctype != "application/x-www-form-urlencoded" {
		t.Errorf("method %s content-type %q", h.method, h.ctype)
	}
	if !h.verifiedOK || len(h.sig) != 64 || strings.ToLower(h.sig) != h.sig {
		t.Errorf("signature %q does not verify over %q", h.sig, h.body)
	}
	if h.body != "app_ref=42&ivr_block=play&session=S1&tag=own" {
		t.Errorf("body %q", h.body)
	}
	if h.query.Get("app_ref") != "42" || h.query.Get("tag") != "fromurl" {
		t.Errorf("URL not posted as given: query %v", h.query)
	}
	if !strings.HasPrefix(h.id, "dlv_") || h.attempt != "1" {
		t.Errorf("delivery id %q attempt %q", h.id, h.attempt)
	}
	eventually(t, 5*time.Second, "delivered state", func() bool {
		it, err := st.OutboxByDeliveryID(h.id)
		return err == nil && it.State == store.OutboxDelivered && it.Attempts == 1
	})
}

func TestNotifyRejects(t *testing.T) {
	st := openStore(t, "")
	q := New(st, testOptions())
	for name, tc := range map[string]struct{ app, target string }{
		"relative":    {"APtest", "/n"},
		"ftp":         {"APtest", "ftp://h/n"},
		"unknown app": {"APnope", "http://127.0.0.1:1/n"},
	} {
		if err := q.Notify(tc.app, tc.target, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := q.Notify("APnope", "http://127.0.0.1:1/n", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token error not wrapped: %v", err)
	}
	if err := New(st, Options{}).Notify("APtest", "http://127.0.0.1:1/n", nil); err == nil {
		t.Error("no Tokens: accepted")
	}
	if n, _ := st.CountOutbox(store.OutboxPending); n != 0 {
		t.Fatalf("%d rejected notifications stored", n)
	}
}

func TestRetryUntil2xx(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		if n < 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	q := New(st, testOptions())
	run(t, q)
	if err := q.Notify("APtest", rcv.URL+"/n", url.Values{"a": {"1"}}); err != nil {
		t.Fatal(err)
	}
	var hits []hit
	for range 3 {
		hits = append(hits, rcv.wait(t, 5*time.Second))
	}
	for i, h := range hits {
		if h.id != hits[0].id || h.attempt != string(rune('1'+i)) || h.body != hits[0].body || h.sig != hits[0].sig || !h.verifiedOK {
			t.Errorf("attempt %d: id %q attempt %q body %q", i+1, h.id, h.attempt, h.body)
		}
	}
	if gap := hits[2].arrived.Sub(hits[1].arrived); gap < 15*time.Millisecond {
		t.Errorf("second retry after %v: backoff did not grow", gap)
	}
	eventually(t, 5*time.Second, "delivered", func() bool {
		it, _ := st.OutboxByDeliveryID(hits[0].id)
		return it.State == store.OutboxDelivered && it.Attempts == 3
	})
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.all()); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

func TestRetriedFailures(t *testing.T) {
	// A port with nothing listening: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/n"
	ln.Close()

	for name, tc := range map[string]struct {
		reply  func(hit, int) int
		target func(r *receiver) string
	}{
		"404 then ok":      {func(h hit, n int) int { return map[bool]int{true: 404, false: 200}[n == 0] }, nil},
		"redirect then ok": {func(h hit, n int) int { return map[bool]int{true: 302, false: 204}[n == 0] }, nil},
		"timeout then ok": {func(h hit, n int) int {
			if n == 0 {
				time.Sleep(600 * time.Millisecond) // longer than the client timeout
			}
			return 200
		}, nil},
		"connection refused": {nil, func(*receiver) string { return dead }},
	} {
		t.Run(name, func(t *testing.T) {
			st := openStore(t, "")
			rcv := newReceiver(t, testToken, tc.reply)
			o := testOptions()
			o.Client = &http.Client{Timeout: 200 * time.Millisecond, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			if name == "redirect then ok" {
				o.Client = nil // the default client must not follow the redirect either
			}
			q := New(st, o)
			run(t, q)
			target := rcv.URL + "/n"
			if tc.target != nil {
				target = tc.target(rcv)
			}
			if err := q.Notify("APtest", target, url.Values{"a": {"1"}}); err != nil {
				t.Fatal(err)
			}
			if tc.target != nil { // nobody answers: attempts pile up, state stays pending
				eventually(t, 5*time.Second, "3 failed attempts", func() bool {
					due, _ := st.DueOutbox(time.Now().Add(time.Hour), 10)
					return len(due) == 1 && due[0].Attempts >= 3 && strings.Contains(due[0].LastError, "refused")
				})
				return
			}
			rcv.wait(t, 5*time.Second)
			rcv.wait(t, 5*time.Second)
			first, second := rcv.all()[0], rcv.all()[1] // in arrival order
			if first.id != second.id || first.attempt != "1" || second.attempt != "2" {
				t.Fatalf("attempts %q/%q ids %q/%q", first.attempt, second.attempt, first.id, second.id)
			}
			eventually(t, 5*time.Second, "delivered", func() bool {
				it, _ := st.OutboxByDeliveryID(first.id)
				return it.State == store.OutboxDelivered && it.Attempts == 2
			})
		})
	}
}

func TestGiveUpAfterMaxAge(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, func(hit, int) int { return 503 })
	o := testOptions()
	o.MaxAge = 300 * time.Millisecond
	o.MinBackoff, o.MaxBackoff = 20*time.Millisecond, time.Hour // the deadline, not the backoff, bounds the last try
	q := New(st, o)
	run(t, q)
	if err := q.Notify("APtest", rcv.URL+"/n", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "failed state", func() bool {
		n, _ := st.CountOutbox(store.OutboxFailed)
		return n == 1
	})
	hits := rcv.all()
	it, _ := st.OutboxByDeliveryID(hits[0].id)
	if it.Attempts != len(hits) || it.LastError != "HTTP 503" || len(hits) < 3 {
		t.Fatalf("item %+v after %d hits", it, len(hits))
	}
	if last := hits[len(hits)-1].arrived.Sub(it.CreatedAt); last < o.MaxAge {
		t.Errorf("gave up %v after queueing, before MaxAge", last)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.all()); n != len(hits) {
		t.Fatalf("attempts after giving up: %d -> %d", len(hits), n)
	}
}

func TestBackoff(t *testing.T) {
	q := New(nil, Options{MinBackoff: time.Second, MaxBackoff: 5 * time.Minute})
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range want {
		if got := q.backoff(i + 1); got != w*time.Second {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w*time.Second)
		}
	}
	if got := q.backoff(1000); got != 5*time.Minute {
		t.Errorf("backoff(1000) = %v", got)
	}
}

func TestRunOnlyOnce(t *testing.T) {
	q := New(openStore(t, ""), testOptions())
	run(t, q)
	eventually(t, time.Second, "Run started", q.running.Load)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := q.Run(ctx); err == nil {
		t.Fatal("second Run ran")
	}
}

// TestNotifyOnce: a notification queued again under its delivery id (a repeat after a crash)
// is delivered once, with that id.
func TestNotifyOnce(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, nil)
	q := New(st, testOptions())
	for range 3 {
		if err := q.NotifyOnce("S1-4", "APtest", "S1", rcv.URL+"/hook", url.Values{"ivr_block": {"play"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.NotifyOnce("", "APtest", "S1", rcv.URL+"/hook", nil); err == nil {
		t.Fatal("empty delivery id accepted")
	}
	run(t, q)
	if h := rcv.wait(t, 5*time.Second); h.id != "S1-4" || h.body != "ivr_block=play" {
		t.Fatalf("delivered %q: %q", h.id, h.body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(rcv.all()); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}
