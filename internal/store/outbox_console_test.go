package store

import (
	"errors"
	"testing"
	"time"
)

// TestOutboxAttempts: each attempt is kept with its status code, time and error, in order;
// recording one again changes nothing; purging an item deletes its attempts.
func TestOutboxAttempts(t *testing.T) { eachStore(t, testOutboxAttempts) }

func testOutboxAttempts(t *testing.T, s *Store) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	it := enqueue(t, s, "d1", "S1", t0)
	other := enqueue(t, s, "d2", "S1", t0)
	for _, a := range []OutboxAttempt{
		{OutboxID: it.ID, Attempt: 2, At: t0.Add(time.Second), Duration: 3 * time.Millisecond, StatusCode: 200},
		{OutboxID: it.ID, Attempt: 1, At: t0, Duration: 10 * time.Second, Error: "timeout"},
		{OutboxID: it.ID, Attempt: 1, At: t0, StatusCode: 999}, // a repeat: ignored
		{OutboxID: other.ID, Attempt: 1, At: t0, StatusCode: 500, Error: "HTTP 500"},
	} {
		if err := s.AddOutboxAttempt(a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.OutboxAttempts(it.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("attempts %+v, %v", got, err)
	}
	if got[0].Attempt != 1 || got[0].StatusCode != 0 || got[0].Error != "timeout" || got[0].Duration != 10*time.Second || !got[0].At.Equal(t0) ||
		got[1].Attempt != 2 || got[1].StatusCode != 200 || got[1].Duration != 3*time.Millisecond {
		t.Fatalf("attempts %+v", got)
	}
	if err := s.MarkDelivered(it.ID, "", 2); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeOutbox(time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	if got, _ := s.OutboxAttempts(it.ID); len(got) != 0 {
		t.Fatalf("attempts of a purged item kept: %+v", got)
	}
	if got, _ := s.OutboxAttempts(other.ID); len(got) != 1 || got[0].StatusCode != 500 {
		t.Fatalf("attempts of a pending item: %+v", got)
	}
}

// TestListAndRetryOutbox: items by app, session and state; retry makes a pending or failed
// item of the app due now (a failed one pending again), and refuses delivered items and
// other apps' items.
func TestListAndRetryOutbox(t *testing.T) { eachStore(t, testListAndRetryOutbox) }

func testListAndRetryOutbox(t *testing.T, s *Store) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := enqueue(t, s, "a", "S1", t0)
	b := enqueue(t, s, "b", "S1", t0)
	c := enqueue(t, s, "c", "S2", t0)
	d, err := s.EnqueueOutbox(OutboxItem{DeliveryID: "d", AppID: "AP2", SessionKey: "S3", Target: "http://h/", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(a.ID, "", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(b.ID, "", 7, "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRetry(c.ID, "", 1, t0.Add(time.Hour), "HTTP 503"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    OutboxFilter
		want string
	}{
		{OutboxFilter{}, "a b c d "},
		{OutboxFilter{AppID: "AP1"}, "a b c "},
		{OutboxFilter{SessionID: "S1"}, "a b "},
		{OutboxFilter{State: OutboxPending}, "c d "},
		{OutboxFilter{AppID: "AP1", State: OutboxFailed}, "b "},
		{OutboxFilter{Limit: 2}, "a b "},
		{OutboxFilter{AppID: "AP3"}, ""},
	} {
		got, err := s.ListOutbox(tc.f)
		if err != nil || ids(got) != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.f, ids(got), err, tc.want)
		}
	}
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		name  string
		id    int64
		app   string
		found bool
	}{
		{"delivered", a.ID, "AP1", false},
		{"another app's", d.ID, "AP1", false},
		{"unknown", 999, "", false},
		{"failed", b.ID, "AP1", true},
		{"pending, backing off", c.ID, "AP1", true},
		{"operator: any app", d.ID, "", true},
	} {
		it, err := s.RetryOutbox(tc.id, tc.app, now)
		if !tc.found {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err != nil || it.State != OutboxPending || !it.NextAt.Equal(now) {
			t.Errorf("%s: %+v, %v", tc.name, it, err)
		}
	}
	// Retried items are due at once: the failed one of S1 again, S2's before its backoff ends.
	if due, err := s.DueOutbox(now, 10); err != nil || ids(due) != "b c d " {
		t.Fatalf("due %q, %v", ids(due), err)
	}
}

// TestRecentSessions: the last updated first, of one app or all, a page at a time.
func TestRecentSessions(t *testing.T) { eachStore(t, testRecentSessions) }

func testRecentSessions(t *testing.T, s *Store) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, r := range []SessionRow{{ID: "S1", AppID: "AP1"}, {ID: "S2", AppID: "AP2"}, {ID: "S3", AppID: "AP1"}} {
		r.State, r.UpdatedAt = "ended", t0.Add(time.Duration(i)*time.Second)
		if err := s.SaveSession(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		app           string
		limit, offset int
		want          string
	}{
		{"", 10, 0, "S3 S2 S1 "},
		{"AP1", 10, 0, "S3 S1 "},
		{"", 1, 1, "S2 "},
		{"AP3", 10, 0, ""},
	} {
		rows, err := s.RecentSessions(tc.app, tc.limit, tc.offset)
		got := ""
		for _, r := range rows {
			got += r.ID + " "
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v", tc, got, err)
		}
	}
}
