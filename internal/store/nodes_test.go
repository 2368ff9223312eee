package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNodes(t *testing.T) { eachStore(t, testNodes) }

func testNodes(t *testing.T, s *Store) {
	if err := s.RegisterNode(Node{ID: "n1", APIURL: "http://127.0.0.1:1", SIPAddr: "127.0.0.1:5060"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterNode(Node{ID: "n2", APIURL: "http://127.0.0.1:2", SIPAddr: "127.0.0.1:5062", SecretID: "f00d"}); err != nil {
		t.Fatal(err)
	}
	// A restart registers again with new addresses.
	if err := s.RegisterNode(Node{ID: "n1", APIURL: "http://127.0.0.1:3", SIPAddr: "127.0.0.1:5064"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Nodes()
	if err != nil || len(all) != 2 || all[0].ID != "n1" || all[0].APIURL != "http://127.0.0.1:3" || all[0].SIPAddr != "127.0.0.1:5064" ||
		all[0].SecretID != "" || all[1].ID != "n2" || all[1].SecretID != "f00d" {
		t.Fatalf("Nodes() = %+v, %v", all, err)
	}
	for _, n := range all {
		if d := time.Since(n.HeartbeatAt); d < -time.Minute || d > time.Minute || n.StartedAt.IsZero() {
			t.Fatalf("node %+v: heartbeat %v ago", n, d)
		}
	}
	if err := s.RegisterNode(Node{}); err == nil {
		t.Fatal("node without id registered")
	}
	// n2 keeps beating, n1 falls silent.
	time.Sleep(300 * time.Millisecond)
	if err := s.Heartbeat("n2"); err != nil {
		t.Fatal(err)
	}
	names := func(ns []Node, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, n := range ns {
			b.WriteString(n.ID + " ")
		}
		return b.String()
	}
	if got := names(s.LiveNodes(200 * time.Millisecond)); got != "n2 " {
		t.Fatalf("live: %q", got)
	}
	if got := names(s.DeadNodes(200 * time.Millisecond)); got != "n1 " {
		t.Fatalf("dead: %q", got)
	}
	if got := names(s.LiveNodes(time.Minute)); got != "n1 n2 " {
		t.Fatalf("live within a minute: %q", got)
	}
	// A node removed as dead only while it is silent.
	for _, id := range []string{"n1", "n2"} {
		if gone, err := s.RemoveDeadNode(id, time.Minute); err != nil || gone {
			t.Fatalf("RemoveDeadNode(%s, a minute) = %v, %v", id, gone, err)
		}
	}
	if gone, err := s.RemoveDeadNode("n2", 200*time.Millisecond); err != nil || gone {
		t.Fatalf("RemoveDeadNode(n2 beating) = %v, %v", gone, err)
	}
	if err := s.RegisterNode(Node{ID: "n3"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if gone, err := s.RemoveDeadNode("n3", 200*time.Millisecond); err != nil || !gone {
		t.Fatalf("RemoveDeadNode(n3 silent) = %v, %v", gone, err)
	}
	if got := names(s.Nodes()); got != "n1 n2 " {
		t.Fatalf("after removing n3: %q", got)
	}
	if err := s.RemoveNode("n1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat("n1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("heartbeat of a removed node: %v", err)
	}
	if err := s.RemoveNode("n1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}

// Only a session's owner saves it; a session without owner (journaled before owners) is
// adopted by the first node that saves it.
func TestSessionOwner(t *testing.T) { eachStore(t, testSessionOwner) }

func testSessionOwner(t *testing.T, s *Store) {
	row := SessionRow{ID: "S1", AppID: "AP1", State: "running", Data: []byte(`{}`), Node: "n1"}
	if err := s.SaveSession(row); err != nil {
		t.Fatal(err)
	}
	other := row
	other.Node, other.State = "n2", "idle"
	ev := SessionEvent{Step: 1, At: time.Now(), Event: "x", Data: []byte(`{}`)}
	for _, events := range [][]SessionEvent{nil, {ev}} {
		if err := s.SaveSession(other, events...); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("saved by another node (%d events): %v", len(events), err)
		}
	}
	if got, _ := s.Session("S1"); got.State != "running" || got.Node != "n1" {
		t.Fatalf("after a refused save: %+v", got)
	}
	if evs, _ := s.SessionEvents("S1"); len(evs) != 0 {
		t.Fatalf("events of a refused save were written: %+v", evs)
	}
	// Ownerless: written as before there were nodes.
	if err := s.SaveSession(SessionRow{ID: "S2", AppID: "AP1", State: "running", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSession(SessionRow{ID: "S2", AppID: "AP1", State: "idle", Data: []byte(`{}`), Node: "n2"}, ev); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session("S2"); got.State != "idle" || got.Node != "n2" {
		t.Fatalf("adopted on save: %+v", got)
	}
}

// A starting node finds the sessions its previous run left; on a shared store not those of the
// other nodes, which are still running them.
func TestAdoptUnfinishedSessions(t *testing.T) { eachStore(t, testAdoptUnfinishedSessions) }

func testAdoptUnfinishedSessions(t *testing.T, s *Store) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, r := range []SessionRow{
		{ID: "mine", Node: "n1", State: "running"},
		{ID: "old", Node: "", State: "idle"},
		{ID: "other", Node: "n2", State: "running"},
		{ID: "done", Node: "n1", State: StateEnded},
	} {
		r.AppID, r.UpdatedAt = "AP1", t0.Add(time.Duration(i)*time.Second)
		if err := s.SaveSession(r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AdoptUnfinishedSessions("n1")
	if err != nil {
		t.Fatal(err)
	}
	want := "mine old "
	if !s.Shared() {
		want = "mine old other " // one node: the other id was this node before
	}
	if sessionIDs(got) != want {
		t.Fatalf("adopted %q, want %q", sessionIDs(got), want)
	}
	for _, r := range got {
		if r.Node != "n1" {
			t.Fatalf("adopted %+v", r)
		}
	}
	if mine, _ := s.UnfinishedSessionsOf("n1"); sessionIDs(mine) != want {
		t.Fatalf("UnfinishedSessionsOf(n1) = %q", sessionIDs(mine))
	}
	if _, err := s.AdoptUnfinishedSessions(""); err == nil {
		t.Fatal("adopted by no node")
	}
}

func sessionIDs(rows []SessionRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.ID + " ")
	}
	return b.String()
}

// A dead node's sessions are taken over once: only while it is silent, each by one node, and
// the dead node can no longer save them.
func TestTakeOverSessions(t *testing.T) { eachStore(t, testTakeOverSessions) }

func testTakeOverSessions(t *testing.T, s *Store) {
	for _, n := range []string{"dead", "n1", "n2"} {
		if err := s.RegisterNode(Node{ID: n}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if err := s.SaveSession(SessionRow{ID: fmt.Sprint("S", i), AppID: "AP1", State: "running", Data: []byte(`{}`), Node: "dead"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSession(SessionRow{ID: "ended", AppID: "AP1", State: StateEnded, Node: "dead"}); err != nil {
		t.Fatal(err)
	}
	// Still beating: nothing is taken.
	if got, err := s.TakeOverSessions("dead", "n1", time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("took %q from a live node, %v", sessionIDs(got), err)
	}
	time.Sleep(250 * time.Millisecond)
	got, err := s.TakeOverSessions("dead", "n1", 200*time.Millisecond)
	if err != nil || sessionIDs(got) != "S0 S1 S2 S3 S4 " {
		t.Fatalf("took %q, %v", sessionIDs(got), err)
	}
	if again, err := s.TakeOverSessions("dead", "n2", 200*time.Millisecond); err != nil || len(again) != 0 {
		t.Fatalf("taken twice: %q, %v", sessionIDs(again), err)
	}
	if err := s.SaveSession(SessionRow{ID: "S0", AppID: "AP1", State: "idle", Node: "dead"}); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("the dead node saved a session taken from it: %v", err)
	}
	if err := s.SaveSession(SessionRow{ID: "S0", AppID: "AP1", State: StateEnded, Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	if mine, _ := s.UnfinishedSessionsOf("n1"); sessionIDs(mine) != "S1 S2 S3 S4 " {
		t.Fatalf("n1's unfinished sessions %q", sessionIDs(mine))
	}
	for _, bad := range [][2]string{{"", "n1"}, {"n1", ""}, {"n1", "n1"}} {
		if _, err := s.TakeOverSessions(bad[0], bad[1], time.Second); err == nil {
			t.Fatalf("TakeOverSessions(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// Survivors taking over from the same dead node at once, each on its own connections: every
// session goes to exactly one of them.
func TestConcurrentTakeOver(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.store(t)
		if err := s.RegisterNode(Node{ID: "dead"}); err != nil {
			t.Fatal(err)
		}
		const sessions = 200
		for i := range sessions {
			if err := s.SaveSession(SessionRow{ID: fmt.Sprint("S", i), AppID: "AP1", State: "running", Node: "dead"}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond)
		var mu sync.Mutex
		owner := map[string]string{}
		var twice []string
		asNodes(t, b, 4, func(st *Store, node string) error {
			got, err := st.TakeOverSessions("dead", node, 10*time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			for _, r := range got {
				if prev, ok := owner[r.ID]; ok {
					twice = append(twice, fmt.Sprintf("%s taken by %s and %s", r.ID, prev, node))
				}
				owner[r.ID] = node
			}
			return err
		})
		if len(twice) > 0 {
			t.Fatal(twice)
		}
		if len(owner) != sessions {
			t.Fatalf("%d sessions taken over, want %d", len(owner), sessions)
		}
		stored := map[string]int{}
		for n := range 4 {
			rows, _ := s.UnfinishedSessionsOf(fmt.Sprint("n", n))
			for _, r := range rows {
				if owner[r.ID] != r.Node {
					t.Fatalf("%s stored as %s's, returned to %s", r.ID, r.Node, owner[r.ID])
				}
			}
			stored[fmt.Sprint("n", n)] = len(rows)
		}
		var counts []string
		for n, c := range stored {
			counts = append(counts, fmt.Sprint(n, "=", c))
		}
		sort.Strings(counts)
		t.Logf("sessions per survivor: %v", counts)
	})
}
