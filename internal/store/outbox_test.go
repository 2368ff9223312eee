package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func enqueue(t *testing.T, s *Store, id, session string, at time.Time) OutboxItem {
	t.Helper()
	it, err := s.EnqueueOutbox(OutboxItem{DeliveryID: id, AppID: "AP1", SessionKey: session,
		Target: "http://h/n?x=1", Body: []byte("a=1&x=1"), Signature: "sig-" + id, CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func ids(items []OutboxItem) string {
	s := ""
	for _, it := range items {
		s += it.DeliveryID + " "
	}
	return s
}

func TestOutboxRoundTrip(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	it := enqueue(t, s, "d1", "S1", t0)
	if it.ID == 0 || it.State != OutboxPending || !it.NextAt.Equal(t0) {
		t.Fatalf("enqueued %+v", it)
	}
	got, err := s.OutboxByDeliveryID("d1")
	if err != nil || got.Target != "http://h/n?x=1" || string(got.Body) != "a=1&x=1" || got.Signature != "sig-d1" ||
		got.SessionKey != "S1" || got.AppID != "AP1" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	// Idempotent on the delivery id: a repeat stores nothing and returns the stored item.
	if again, err := s.EnqueueOutbox(OutboxItem{DeliveryID: "d1", Target: "http://h/other", Body: []byte("b=2")}); err != nil ||
		again.ID != it.ID || again.Target != "http://h/n?x=1" || string(again.Body) != "a=1&x=1" {
		t.Fatalf("repeated delivery id: %+v, %v", again, err)
	}
	if n, _ := s.CountOutbox(OutboxPending); n != 1 {
		t.Fatalf("%d pending after a repeat, want 1", n)
	}
	if _, err := s.EnqueueOutbox(OutboxItem{Target: "http://h/"}); err == nil {
		t.Fatal("empty delivery id accepted")
	}
	if _, err := s.OutboxByDeliveryID("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestOutboxLifecycle(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := enqueue(t, s, "a", "", t0)
	b := enqueue(t, s, "b", "", t0.Add(time.Second))
	c := enqueue(t, s, "c", "", t0.Add(2*time.Second))

	if due, err := s.DueOutbox(t0.Add(time.Second), 10); err != nil || ids(due) != "a b " {
		t.Fatalf("due = %q, %v", ids(due), err)
	}
	if due, _ := s.DueOutbox(t0.Add(time.Hour), 2); ids(due) != "a b " {
		t.Fatalf("limit: due = %q", ids(due))
	}
	if err := s.MarkRetry(a.ID, 1, t0.Add(time.Minute), "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(b.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(c.ID, 3, "timeout"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueOutbox(t0.Add(30*time.Second), 10); len(due) != 0 {
		t.Fatalf("due during backoff: %q", ids(due))
	}
	if due, _ := s.DueOutbox(t0.Add(time.Minute), 10); ids(due) != "a " || due[0].Attempts != 1 || due[0].LastError != "HTTP 500" {
		t.Fatalf("due after backoff: %+v", due)
	}
	if next, ok, err := s.NextOutboxAt(t0); err != nil || !ok || !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("NextOutboxAt = %v %v %v", next, ok, err)
	}
	if _, ok, _ := s.NextOutboxAt(t0.Add(time.Minute)); ok {
		t.Fatal("NextOutboxAt found an item after the last one")
	}
	// Marking an item that is no longer pending is refused.
	if err := s.MarkRetry(b.ID, 2, t0, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkRetry on delivered: %v", err)
	}
	for state, want := range map[string]int{OutboxPending: 1, OutboxDelivered: 1, OutboxFailed: 1} {
		if n, err := s.CountOutbox(state); err != nil || n != want {
			t.Errorf("CountOutbox(%s) = %d, %v", state, n, err)
		}
	}
	if got, _ := s.OutboxByDeliveryID("c"); got.State != OutboxFailed || got.Attempts != 3 || got.LastError != "timeout" {
		t.Fatalf("failed item %+v", got)
	}
	// Requeue makes the backed-off item due at once.
	if n, err := s.RequeueOutbox(t0.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("RequeueOutbox = %d, %v", n, err)
	}
	if due, _ := s.DueOutbox(t0.Add(time.Second), 10); ids(due) != "a " {
		t.Fatalf("due after requeue: %q", ids(due))
	}
	// Purge drops finished items only.
	if n, err := s.PurgeOutbox(time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("PurgeOutbox = %d, %v", n, err)
	}
	if _, err := s.OutboxByDeliveryID("a"); err != nil {
		t.Fatalf("pending item purged: %v", err)
	}
}

func TestOutboxSessionOrder(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s1a := enqueue(t, s, "s1a", "S1", t0)
	enqueue(t, s, "s1b", "S1", t0)
	enqueue(t, s, "s2a", "S2", t0)
	enqueue(t, s, "free1", "", t0)
	enqueue(t, s, "s2b", "S2", t0)
	enqueue(t, s, "free2", "", t0)
	at := t0.Add(time.Second)
	steps := []struct {
		do   func() error
		want string
	}{
		{nil, "s1a s2a free1 free2 "},
		// s1a failed its first attempt and waits: s1b waits behind it, on every attempt.
		{func() error { return s.MarkRetry(s1a.ID, 1, t0.Add(time.Hour), "HTTP 503") }, "s2a free1 free2 "},
		{func() error {
			it, _ := s.OutboxByDeliveryID("s2a")
			return s.MarkDelivered(it.ID, 1)
		}, "free1 s2b free2 "},
		// s1a is given up: s1b goes.
		{func() error { return s.MarkFailed(s1a.ID, 2, "HTTP 503") }, "s1b free1 s2b free2 "},
	}
	for i, st := range steps {
		if st.do != nil {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
		}
		due, err := s.DueOutbox(at, 100)
		if err != nil || ids(due) != st.want {
			t.Fatalf("step %d: due = %q, %v; want %q", i, ids(due), err, st.want)
		}
	}
}

func BenchmarkDueOutbox(b *testing.B) {
	s, err := Open(b.TempDir() + "/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	for i := range 2000 {
		if _, err := s.EnqueueOutbox(OutboxItem{DeliveryID: fmt.Sprint(i), SessionKey: fmt.Sprint(i % 100), Target: "http://h/", CreatedAt: t0}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.DueOutbox(t0, 64); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDueOutboxOneSessionBacklog: a long backlog of one session, where only the head is
// eligible, must not make every dispatch scan quadratically.
func BenchmarkDueOutboxOneSessionBacklog(b *testing.B) {
	s, err := Open(b.TempDir() + "/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	for i := range 5000 {
		if _, err := s.EnqueueOutbox(OutboxItem{DeliveryID: fmt.Sprint(i), SessionKey: "S", Target: "http://h/", CreatedAt: t0}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if due, err := s.DueOutbox(t0, 64); err != nil || len(due) != 1 {
			b.Fatal(len(due), err)
		}
	}
}

func TestTransient(t *testing.T) {
	s, _ := open(t)
	a, err := s.CreateApp("a")
	if err != nil {
		t.Fatal(err)
	}
	// A constraint violation is about the row itself: retrying it cannot help.
	_, err = s.db.Exec(`INSERT INTO apps (id, name, access_token, created_at) VALUES (?, 'b', 'other', 0)`, a.ID)
	if err == nil || Transient(err) {
		t.Fatalf("duplicate app id: err %v, transient %v; want a permanent error", err, Transient(err))
	}
	if Transient(nil) {
		t.Fatal("nil is transient")
	}
	if !Transient(errors.New("context deadline exceeded")) {
		t.Fatal("a non-SQLite failure is not transient")
	}
}
