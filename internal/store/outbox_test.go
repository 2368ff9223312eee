package store

import (
	"errors"
	"fmt"
	"sync"
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

func TestOutboxRoundTrip(t *testing.T) { eachStore(t, testOutboxRoundTrip) }

func testOutboxRoundTrip(t *testing.T, s *Store) {
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

func TestOutboxLifecycle(t *testing.T) { eachStore(t, testOutboxLifecycle) }

func testOutboxLifecycle(t *testing.T, s *Store) {
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
	if got, err := s.ClaimOutbox("n1", t0.Add(time.Hour), time.Minute, 10); err != nil || ids(got) != "a b c " {
		t.Fatalf("claimed %q, %v", ids(got), err)
	}
	// Only the claimant records an outcome.
	if err := s.MarkDelivered(b.ID, "n2", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkDelivered by another node: %v", err)
	}
	if err := s.MarkRetry(a.ID, "n1", 1, t0.Add(time.Minute), "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(b.ID, "n1", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(c.ID, "n1", 3, "timeout"); err != nil {
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
	if err := s.MarkRetry(b.ID, "n1", 2, t0, "x"); !errors.Is(err, ErrNotFound) {
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
	if n, err := s.RequeueOutbox(t0.Add(time.Second), "n1"); err != nil || n != 1 {
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

func TestOutboxSessionOrder(t *testing.T) { eachStore(t, testOutboxSessionOrder) }

func testOutboxSessionOrder(t *testing.T, s *Store) {
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
		{func() error { return s.MarkRetry(s1a.ID, "", 1, t0.Add(time.Hour), "HTTP 503") }, "s2a free1 free2 "},
		{func() error {
			it, _ := s.OutboxByDeliveryID("s2a")
			return s.MarkDelivered(it.ID, "", 1)
		}, "free1 s2b free2 "},
		// s1a is given up: s1b goes.
		{func() error { return s.MarkFailed(s1a.ID, "", 2, "HTTP 503") }, "s1b free1 s2b free2 "},
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

func TestTransient(t *testing.T) { eachStore(t, testTransient) }

func testTransient(t *testing.T, s *Store) {
	a, err := s.CreateApp("a")
	if err != nil {
		t.Fatal(err)
	}
	// A constraint violation is about the row itself: retrying it cannot help.
	c, cancel := ctx()
	defer cancel()
	_, err = s.exec(c, `INSERT INTO apps (id, name, access_token, created_at) VALUES (?, ?, ?, ?)`, a.ID, "b", "t", 0)
	if err == nil || Transient(err) {
		t.Fatalf("duplicate key: err %v, transient %v; want a permanent error", err, Transient(err))
	}
	if Transient(nil) {
		t.Fatal("nil is transient")
	}
	if !Transient(errors.New("context deadline exceeded")) {
		t.Fatal("a failure that is not the database's is not transient")
	}
}

// Claims: a claimed item is not claimed again until its lease runs out or its claimant records
// an outcome or releases it; a session's next item waits for its head in every case.
func TestOutboxClaims(t *testing.T) { eachStore(t, testOutboxClaims) }

func testOutboxClaims(t *testing.T, s *Store) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	enqueue(t, s, "s1a", "S1", t0)
	enqueue(t, s, "s1b", "S1", t0)
	enqueue(t, s, "s2a", "S2", t0)
	enqueue(t, s, "free", "", t0)
	at := t0.Add(time.Second)
	claim := func(node string, lease time.Duration, limit int) []OutboxItem {
		t.Helper()
		items, err := s.ClaimOutbox(node, at, lease, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.ClaimedBy != node || time.Until(it.ClaimedUntil) > lease || time.Until(it.ClaimedUntil) < lease-time.Minute {
				t.Fatalf("claimed %s: by %q until %v", it.DeliveryID, it.ClaimedBy, it.ClaimedUntil)
			}
		}
		return items
	}
	one := claim("n1", time.Hour, 1)
	if ids(one) != "s1a " {
		t.Fatalf("n1 claimed %q", ids(one))
	}
	if got := claim("n2", time.Hour, 10); ids(got) != "s2a free " {
		t.Fatalf("n2 claimed %q; want the rest of the heads", ids(got))
	}
	if got := claim("n3", time.Hour, 10); len(got) != 0 {
		t.Fatalf("n3 claimed %q while everything is claimed", ids(got))
	}
	// Abandoned: s1a can be claimed again at once, still before s1b.
	if err := s.ReleaseOutbox(one[0].ID, "n2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("release by another node: %v", err)
	}
	if err := s.ReleaseOutbox(one[0].ID, "n1"); err != nil {
		t.Fatal(err)
	}
	if it, _ := s.OutboxByDeliveryID("s1a"); it.ClaimedBy != "" || !it.ClaimedUntil.IsZero() || it.Attempts != 0 {
		t.Fatalf("released item %+v", it)
	}
	// A claim that runs out (its node died) can be taken by another node.
	if got := claim("n3", time.Millisecond, 10); ids(got) != "s1a " {
		t.Fatalf("n3 claimed %q", ids(got))
	}
	time.Sleep(20 * time.Millisecond)
	if next, ok, err := s.NextOutboxAt(at); err != nil || !ok || next.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Fatalf("NextOutboxAt = %v %v %v", next, ok, err)
	}
	if got := claim("n1", time.Hour, 10); ids(got) != "s1a " {
		t.Fatalf("n1 claimed %q after n3's lease ran out", ids(got))
	}
	// The dead node's outcome no longer counts; the new claimant's does.
	if err := s.MarkDelivered(one[0].ID, "n3", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkDelivered by a node whose claim was taken: %v", err)
	}
	if err := s.MarkDelivered(one[0].ID, "n1", 1); err != nil {
		t.Fatal(err)
	}
	if got := claim("n3", time.Hour, 10); ids(got) != "s1b " {
		t.Fatalf("after s1a: claimed %q", ids(got))
	}
	// A node starting again releases its own claims from before.
	if _, err := s.RequeueOutbox(at, "n3"); err != nil {
		t.Fatal(err)
	}
	want := "s1b " // n3's claim released; n2's (s2a, free) kept
	if !s.Shared() {
		want = "s1b s2a free " // one node: every claim was this node's
	}
	if got := claim("n1", time.Hour, 10); ids(got) != want {
		t.Fatalf("after n3's requeue: claimed %q, want %q", ids(got), want)
	}
	if _, err := s.ClaimOutbox("", at, time.Hour, 1); err == nil {
		t.Fatal("claim without a node accepted")
	}
}

// Many claimants at once (each with its own connections, as nodes): every item is claimed
// exactly once, and a session's items one at a time, in order.
func TestOutboxConcurrentClaims(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.store(t)
		t0 := time.Now().Add(-time.Second)
		const sessions, each = 20, 10
		for i := range each {
			for k := range sessions {
				enqueue(t, s, fmt.Sprintf("S%d-%d", k, i), fmt.Sprint("S", k), t0)
			}
		}
		var mu sync.Mutex
		claimed := map[string]string{} // delivery id → node
		busy := map[string]bool{}      // session → an item of it is claimed
		next := map[string]int{}       // session → next seq expected
		var violations []string
		asNodes(t, b, 4, func(st *Store, node string) error {
			for idle := 0; idle < 50; {
				items, err := st.ClaimOutbox(node, time.Now(), time.Minute, 3)
				if err != nil {
					return err
				}
				if len(items) == 0 {
					idle++
					time.Sleep(2 * time.Millisecond)
					continue
				}
				idle = 0
				for _, it := range items {
					var k, seq int
					fmt.Sscanf(it.DeliveryID, "S%d-%d", &k, &seq)
					mu.Lock()
					if prev, ok := claimed[it.DeliveryID]; ok {
						violations = append(violations, fmt.Sprintf("%s claimed by %s and %s", it.DeliveryID, prev, node))
					}
					claimed[it.DeliveryID] = node
					if busy[it.SessionKey] || next[it.SessionKey] != seq {
						violations = append(violations, fmt.Sprintf("%s claimed out of order (busy %v, next %d)", it.DeliveryID, busy[it.SessionKey], next[it.SessionKey]))
					}
					busy[it.SessionKey] = true
					mu.Unlock()
				}
				for _, it := range items {
					mu.Lock()
					busy[it.SessionKey] = false
					next[it.SessionKey]++
					mu.Unlock()
					if err := st.MarkDelivered(it.ID, node, 1); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if len(violations) > 0 {
			t.Fatalf("%d violations, e.g. %s", len(violations), violations[0])
		}
		perNode := map[string]int{}
		for _, node := range claimed {
			perNode[node]++
		}
		if len(claimed) != sessions*each {
			t.Fatalf("%d items claimed, want %d", len(claimed), sessions*each)
		}
		t.Logf("claims per node: %v", perNode)
	})
}
