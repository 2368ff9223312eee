package notify

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// TestAttemptsRecorded: every attempt is kept with the app's HTTP status (0 when nothing
// answered), its time and its error, for the console.
func TestAttemptsRecorded(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		if n == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	q := New(st, testOptions())
	run(t, q)
	before := time.Now()
	if err := q.NotifyOnce("S1-1", "APtest", "S1", rcv.URL+"/n", url.Values{"a": {"1"}}); err != nil {
		t.Fatal(err)
	}
	if err := q.NotifyOnce("S2-1", "APtest", "S2", "http://127.0.0.1:1/closed", nil); err != nil {
		t.Fatal(err)
	}
	var it store.OutboxItem
	eventually(t, 5*time.Second, "delivered", func() bool {
		it, _ = st.OutboxByDeliveryID("S1-1")
		return it.State == store.OutboxDelivered
	})
	got, err := st.OutboxAttempts(it.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("attempts %+v, %v", got, err)
	}
	if got[0].Attempt != 1 || got[0].StatusCode != 503 || got[0].Error != "HTTP 503" ||
		got[1].Attempt != 2 || got[1].StatusCode != 204 || got[1].Error != "" ||
		got[0].At.Before(before.Add(-time.Millisecond)) || got[1].At.Before(got[0].At) || got[1].Duration <= 0 {
		t.Fatalf("attempts %+v", got)
	}
	closed, _ := st.OutboxByDeliveryID("S2-1")
	eventually(t, 5*time.Second, "a refused attempt", func() bool {
		a, _ := st.OutboxAttempts(closed.ID)
		return len(a) > 0 && a[0].StatusCode == 0 && a[0].Error != ""
	})
}

// TestRetryNow: a failed item is pending again and attempted at once; a pending one waiting
// out its backoff is attempted at once; delivered and other apps' items are refused.
func TestRetryNow(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, nil)
	o := testOptions()
	o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour // nothing is retried unless asked
	q := New(st, o)
	run(t, q)
	failed, err := st.EnqueueOutbox(store.OutboxItem{DeliveryID: "F-1", AppID: "APtest", Target: rcv.URL + "/f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MarkFailed(failed.ID, "", 3, "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	if err := q.RetryNow(failed.ID, "APother"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another app's item: %v", err)
	}
	if err := q.RetryNow(failed.ID, "APtest"); err != nil {
		t.Fatal(err)
	}
	if h := rcv.wait(t, 5*time.Second); h.id != "F-1" || h.attempt != "4" {
		t.Fatalf("retried %s attempt %s", h.id, h.attempt)
	}
	// Run is past its start (which makes every pending item due): this one waits an hour.
	waiting, err := st.EnqueueOutbox(store.OutboxItem{DeliveryID: "W-1", AppID: "APtest", Target: rcv.URL + "/w",
		NextAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-rcv.got:
		t.Fatalf("%s sent before its time", h.id)
	case <-time.After(200 * time.Millisecond):
	}
	if err := q.RetryNow(waiting.ID, ""); err != nil {
		t.Fatal(err)
	}
	if h := rcv.wait(t, 5*time.Second); h.id != "W-1" {
		t.Fatalf("retried %s", h.id)
	}
	eventually(t, 5*time.Second, "both delivered", func() bool {
		n, _ := st.CountOutbox(store.OutboxDelivered)
		return n == 2
	})
	if err := q.RetryNow(failed.ID, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a delivered item: %v", err)
	}
}
