package notify

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
	"github.com/ivrd/ivrd/internal/testpg"
)

// Environment of a node process (TestMain runs one instead of the tests).
const (
	nodeEnv = "IVRD_NOTIFY_TEST_NODE"
	dsnEnv  = "IVRD_NOTIFY_TEST_DSN"
)

func TestMain(m *testing.M) {
	if node := os.Getenv(nodeEnv); node != "" {
		os.Exit(nodeMain(node, os.Getenv(dsnEnv)))
	}
	os.Exit(testpg.Main(m))
}

// nodeMain runs a queue on the PostgreSQL database dsn until the process is killed.
func nodeMain(node, dsn string) int {
	st, err := store.OpenPostgres(dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := New(st, nodeOptions(node, killLease)).Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// nodeHeader names the node that sent a notification (set by the test's client, not ivrd).
const nodeHeader = "X-Test-Node"

type tagNode struct {
	node string
	rt   http.RoundTripper
}

func (t tagNode) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(nodeHeader, t.node)
	return t.rt.RoundTrip(r)
}

// nodeOptions are the options of a queue standing for cluster node node.
func nodeOptions(node string, lease time.Duration) Options {
	o := testOptions()
	o.Node, o.Lease, o.Workers = node, lease, 8
	o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	o.Client = &http.Client{Timeout: lease / 2, Transport: tagNode{node, http.DefaultTransport.(*http.Transport).Clone()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return o
}

// orderCheck follows the attempts an app sees across nodes: an attempt at a session's
// notification while an earlier one of the session is undelivered, or while another attempt
// of the session is open, is a violation.
type orderCheck struct {
	mu         sync.Mutex
	next       map[string]int    // session → seq due (all before it delivered)
	open       map[string]bool   // session → an attempt is open
	ok         map[string]int    // delivery id → answered 2xx
	byNode     map[string]int    // node → deliveries (2xx)
	deliverer  map[string]string // delivery id → node that delivered it
	violations []string
}

func newOrderCheck() *orderCheck {
	return &orderCheck{next: map[string]int{}, open: map[string]bool{}, ok: map[string]int{}, byNode: map[string]int{},
		deliverer: map[string]string{}}
}

// attempt checks the start of an attempt, runs answer (the app's answer) and records the end.
func (c *orderCheck) attempt(h hit, answer func() int) int {
	s := h.form.Get("session")
	seq, _ := strconv.Atoi(h.form.Get("seq"))
	c.mu.Lock()
	if seq > c.next[s] {
		c.violations = append(c.violations, fmt.Sprintf("%s seq %d attempted (by %s) with %d delivered", s, seq, h.header.Get(nodeHeader), c.next[s]))
	}
	if c.open[s] {
		c.violations = append(c.violations, fmt.Sprintf("%s seq %d attempted (by %s) during another attempt", s, seq, h.header.Get(nodeHeader)))
	}
	c.open[s] = true
	c.mu.Unlock()
	code := answer()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open[s] = false
	if code/100 == 2 {
		c.ok[h.id]++
		node := h.header.Get(nodeHeader)
		c.byNode[node]++
		c.deliverer[h.id] = node
		if seq == c.next[s] {
			c.next[s]++
		}
	}
	return code
}

func (c *orderCheck) check(t *testing.T, want int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > 0 {
		t.Fatalf("%d out-of-order attempts, e.g. %v", len(c.violations), c.violations[0])
	}
	if len(c.ok) != want {
		t.Fatalf("%d notifications delivered, want %d", len(c.ok), want)
	}
}

func (c *orderCheck) delivered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ok)
}

// failures is how many first attempts of a delivery the app refuses (0, 1 or 2).
func failures(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % 3)
}

// Two nodes on one PostgreSQL outbox, each queueing the notifications of its own sessions,
// deliver 500 notifications of 50 sessions to an app that refuses many first attempts: each is
// delivered once, one session's are attempted one at a time and in order on every attempt,
// and both nodes deliver.
func TestClusterDelivery(t *testing.T) {
	dsn := testpg.DSN(t)
	c := newOrderCheck()
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		return c.attempt(h, func() int {
			if a, _ := strconv.Atoi(h.attempt); a <= failures(h.id) {
				return 503
			}
			return 200
		})
	})
	queuedBy := map[string]string{} // session → the node that queued its notifications
	var queues []*Queue
	for _, node := range []string{"A", "B"} {
		st, err := store.OpenPostgres(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		q := New(st, nodeOptions(node, 20*time.Second))
		run(t, q)
		queues = append(queues, q)
	}
	const sessions, each = 50, 10
	var wg sync.WaitGroup
	for s := range sessions {
		q := queues[s%2] // the node carrying the session queues its notifications
		queuedBy[fmt.Sprint("S", s)] = q.o.Node
		wg.Go(func() {
			for i := range each {
				p := url.Values{"session": {fmt.Sprint("S", s)}, "seq": {strconv.Itoa(i)}}
				if err := q.NotifyOnce(fmt.Sprintf("S%d-%d", s, i), "APtest", fmt.Sprint("S", s), rcv.URL+"/n", p); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	eventually(t, 60*time.Second, "all delivered", func() bool { return c.delivered() == sessions*each })
	c.check(t, sessions*each)
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range c.ok {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	if c.byNode["A"] == 0 || c.byNode["B"] == 0 {
		t.Fatalf("deliveries per node %v: want both nodes to deliver", c.byNode)
	}
	cross := 0 // delivered by the node that did not queue them
	for id, node := range c.deliverer {
		session, _, _ := strings.Cut(id, "-")
		if node != queuedBy[session] {
			cross++
		}
	}
	t.Logf("%d attempts for %d notifications; deliveries per node %v, %d by the node that did not queue them",
		len(rcv.all()), sessions*each, c.byNode, cross)
}

// killLease is the lease of the nodes of TestClusterNodeKilled.
const killLease = 3 * time.Second

// A node killed (SIGKILL) in the middle of deliveries: once its claims run out, the other node
// delivers what it was attempting, and everything else, in order.
func TestClusterNodeKilled(t *testing.T) {
	dsn := testpg.DSN(t)
	st, err := store.OpenPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := newOrderCheck()
	var mu sync.Mutex
	hanging := map[string]bool{} // delivery ids node B is attempting when killed
	fromB := 0
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		return c.attempt(h, func() int {
			if h.header.Get(nodeHeader) != "B" {
				return 200
			}
			mu.Lock()
			fromB++
			hang := fromB > 10 // B delivers ten, then its attempts hang until it dies
			if hang {
				hanging[h.id] = true
			}
			mu.Unlock()
			if hang {
				<-h.gone
				return 599
			}
			return 200
		})
	})
	const sessions, each = 20, 5
	a := New(st, nodeOptions("A", killLease))
	for s := range sessions {
		for i := range each {
			p := url.Values{"session": {fmt.Sprint("S", s)}, "seq": {strconv.Itoa(i)}}
			if err := a.NotifyOnce(fmt.Sprintf("S%d-%d", s, i), "APtest", fmt.Sprint("S", s), rcv.URL+"/n", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := exec.Command(os.Args[0], "-test.run=^$")
	b.Env = append(os.Environ(), nodeEnv+"=B", dsnEnv+"="+dsn)
	b.Stderr = os.Stderr
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { b.Wait(); close(exited) }()
	t.Cleanup(func() { b.Process.Kill(); <-exited })
	eventually(t, 30*time.Second, "node B attempting", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hanging) >= 3
	})
	run(t, a) // A starts while B holds claims
	time.Sleep(200 * time.Millisecond)
	if err := b.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	killed := time.Now()
	mu.Lock()
	stuck := make([]string, 0, len(hanging))
	for id := range hanging {
		stuck = append(stuck, id)
	}
	mu.Unlock()
	eventually(t, 60*time.Second, "all delivered", func() bool { return c.delivered() == sessions*each })
	c.check(t, sessions*each)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range stuck {
		if c.deliverer[id] != "A" {
			t.Errorf("%s, being attempted by B when it died, delivered by %q", id, c.deliverer[id])
		}
	}
	var lastStuck time.Time
	for _, h := range rcv.all() {
		if hanging[h.id] && h.header.Get(nodeHeader) == "A" && h.arrived.After(lastStuck) {
			lastStuck = h.arrived
		}
	}
	if c.byNode["B"] < 10 || c.byNode["A"] == 0 {
		t.Fatalf("deliveries per node %v", c.byNode)
	}
	t.Logf("B was attempting %d notifications when killed; A delivered them by %v after the kill (lease %v); deliveries per node %v",
		len(stuck), lastStuck.Sub(killed).Round(10*time.Millisecond), killLease, c.byNode)
}
