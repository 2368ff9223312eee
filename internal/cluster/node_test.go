package cluster

import (
	"errors"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
	"github.com/ivrd/ivrd/internal/testpg"
)

func TestMain(m *testing.M) { os.Exit(testpg.Main(m)) }

// openPG opens a fresh PostgreSQL database as the store of a cluster.
func openPG(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.OpenPostgres(testpg.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// takeOvers records what a node's TakeOver was handed.
type takeOvers struct {
	mu   sync.Mutex
	got  map[string][]string // dead node → session ids, in the order handed
	n    int
	done chan struct{}
}

func newTakeOvers() *takeOvers {
	return &takeOvers{got: map[string][]string{}, done: make(chan struct{}, 10)}
}

func (k *takeOvers) take(dead string, rows []store.SessionRow) {
	k.mu.Lock()
	for _, r := range rows {
		k.got[dead] = append(k.got[dead], r.ID)
	}
	k.n++
	k.mu.Unlock()
	k.done <- struct{}{}
}

func (k *takeOvers) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

func testLog(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

func startNode(t *testing.T, st Store, id, secret string, take func(string, []store.SessionRow)) (*Node, error) {
	t.Helper()
	n, err := New(Config{Store: st, ID: id, APIURL: "http://127.0.0.1:1/" + id, SIPAddr: "127.0.0.1:5060", Secret: secret,
		Beat: 50 * time.Millisecond, Silence: 400 * time.Millisecond, TakeOver: take, Log: testLog(t)})
	if err == nil {
		t.Cleanup(n.Close)
	}
	return n, err
}

// Three nodes on one PostgreSQL; one stops heartbeating with unfinished sessions. Exactly one
// of the other two takes each over, after the silence, and the dead node is removed; the dead
// node can no longer save them. Its ended session is not taken.
func TestTakeOverDeadNode(t *testing.T) {
	st := openPG(t)
	ka, kb, kc := newTakeOvers(), newTakeOvers(), newTakeOvers()
	a, err := startNode(t, st, "na", "s3cret", ka.take)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startNode(t, st, "nb", "s3cret", kb.take); err != nil {
		t.Fatal(err)
	}
	if _, err := startNode(t, st, "nc", "s3cret", kc.take); err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.SessionRow{
		{ID: "S1", AppID: "A1", State: "running", Node: "na"},
		{ID: "S2", AppID: "A1", State: "running", Node: "na"},
		{ID: "S3", AppID: "A1", State: store.StateEnded, Node: "na"},
		{ID: "S4", AppID: "A1", State: "running", Node: "nb"},
	} {
		if err := st.SaveSession(r); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(600 * time.Millisecond) // all beating: nothing taken
	if ka.count()+kb.count()+kc.count() != 0 {
		t.Fatalf("taken over while every node beats: %v %v %v", ka.got, kb.got, kc.got)
	}
	a.Close() // na dies
	died := time.Now()
	select {
	case <-kb.done:
	case <-kc.done:
	case <-time.After(5 * time.Second):
		t.Fatal("na's sessions not taken over in 5 s")
	}
	if d := time.Since(died); d < 400*time.Millisecond-2*50*time.Millisecond { // its last beat came up to a beat before Close
		t.Fatalf("taken over %v after the node stopped, before the silence", d)
	}
	time.Sleep(300 * time.Millisecond)
	kb.mu.Lock()
	kc.mu.Lock()
	all := append(append([]string{}, kb.got["na"]...), kc.got["na"]...)
	sort.Strings(all)
	if len(all) != 2 || all[0] != "S1" || all[1] != "S2" || len(kb.got)+len(kc.got) > 2 {
		t.Errorf("taken over: by nb %v, by nc %v; want S1 and S2 of na, once each", kb.got, kc.got)
	}
	kc.mu.Unlock()
	kb.mu.Unlock()
	nodes, err := st.Nodes()
	if err != nil || len(nodes) != 2 || nodes[0].ID != "nb" || nodes[1].ID != "nc" {
		t.Fatalf("nodes after the takeover: %+v, %v", nodes, err)
	}
	if err := st.SaveSession(store.SessionRow{ID: "S1", AppID: "A1", State: "running", Node: "na"}); !errors.Is(err, store.ErrNotOwner) {
		t.Fatalf("the dead node saved a session taken from it: %v", err)
	}
}

// A node refuses to start beside live nodes with another cluster secret; with the same one it
// starts, and a node whose registration another removed registers again at its next beat.
func TestNodeSecretAndComeBack(t *testing.T) {
	st := openPG(t)
	if _, err := startNode(t, st, "na", "one", newTakeOvers().take); err != nil {
		t.Fatal(err)
	}
	if _, err := startNode(t, st, "nb", "two", newTakeOvers().take); err == nil {
		t.Fatal("a node with another secret started")
	}
	if _, err := startNode(t, st, "nc", "", newTakeOvers().take); err == nil {
		t.Fatal("a node without a secret started beside one with")
	}
	if _, err := startNode(t, st, "nd", "one", newTakeOvers().take); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveNode("na"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		live, err := st.LiveNodes(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(live) == 2 && live[0].ID == "na" && live[0].SecretID == SecretID("one") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("na did not register again: %+v", live)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if SecretID("one") == SecretID("two") || SecretID("") != "" || len(SecretID("one")) != 16 {
		t.Fatal("SecretID does not tell secrets apart")
	}
}

// The database is unreachable for longer than the silence, then back: every node's last
// heartbeat is old by then, yet no node takes over another's sessions (each waits until the
// others have had the time to heartbeat again).
func TestDatabaseOutageTakesNothing(t *testing.T) {
	st := openPG(t)
	ka, kb := newTakeOvers(), newTakeOvers()
	if _, err := startNode(t, st, "na", "s3cret", ka.take); err != nil {
		t.Fatal(err)
	}
	if _, err := startNode(t, st, "nb", "s3cret", kb.take); err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.SessionRow{{ID: "S1", AppID: "A1", State: "running", Node: "na"}, {ID: "S2", AppID: "A1", State: "running", Node: "nb"}} {
		if err := st.SaveSession(r); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	testpg.Halt(t)
	time.Sleep(time.Second) // 2.5 silences
	testpg.Resume(t)
	time.Sleep(2 * time.Second)
	if n := ka.count() + kb.count(); n != 0 {
		t.Fatalf("%d takeovers after the database came back", n)
	}
	for _, id := range []string{"S1", "S2"} {
		if row, err := st.Session(id); err != nil || row.Node != map[string]string{"S1": "na", "S2": "nb"}[id] {
			t.Fatalf("%s after the outage: %+v, %v", id, row, err)
		}
	}
}
