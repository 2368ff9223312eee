package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// Items queued by one process (never delivered, or waiting out a long backoff) are delivered
// by the next process on the same database.
func TestSurvivesRestart(t *testing.T) { eachStore(t, testSurvivesRestart) }

func testSurvivesRestart(t *testing.T, open func() *store.Store) {
	failing := newReceiver(t, testToken, func(hit, int) int { return 500 })
	rcv := newReceiver(t, testToken, nil)

	st1 := open()
	o := testOptions()
	o.MinBackoff = time.Hour // a retry would not come during this test
	q1 := New(st1, o)
	stop := run(t, q1)
	if err := q1.Notify("APtest", failing.URL+"/n", url.Values{"k": {"backoff"}}); err != nil {
		t.Fatal(err)
	}
	failing.wait(t, 5*time.Second)
	eventually(t, 5*time.Second, "retry recorded", func() bool {
		due, _ := st1.DueOutbox(time.Now().Add(2*time.Hour), 10)
		return len(due) == 1 && due[0].Attempts == 1
	})
	stop()
	// Queued while nothing runs: these must not be lost either.
	for i := range 5 {
		if err := q1.NotifySession("APtest", "S1", rcv.URL+"/n", url.Values{"k": {strconv.Itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// The first receiver recovers; point the pending item at it by letting it answer 200 now.
	failing.reply = nil
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}

	st2 := open()
	q2 := New(st2, o)
	run(t, q2)
	h := failing.wait(t, 5*time.Second) // due at once after restart, despite the hour of backoff
	if h.attempt != "2" || h.form.Get("k") != "backoff" || !h.verifiedOK {
		t.Errorf("restarted retry: attempt %q form %v", h.attempt, h.form)
	}
	for i := range 5 {
		h := rcv.wait(t, 5*time.Second)
		if h.form.Get("k") != strconv.Itoa(i) || !h.verifiedOK || h.attempt != "1" {
			t.Errorf("item %d after restart: %v attempt %s", i, h.form, h.attempt)
		}
	}
	eventually(t, 5*time.Second, "all delivered", func() bool {
		n, _ := st2.CountOutbox(store.OutboxDelivered)
		p, _ := st2.CountOutbox(store.OutboxPending)
		return n == 6 && p == 0
	})
}

// Cancelling Run abandons an attempt in progress without counting it.
func TestShutdownAbandonsInFlight(t *testing.T) {
	st := openStore(t, "")
	release := make(chan struct{})
	rcv := newReceiver(t, testToken, func(hit, int) int { <-release; return 200 })
	defer close(release)
	q := New(st, testOptions())
	stop := run(t, q)
	if err := q.Notify("APtest", rcv.URL+"/n", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "request in flight", func() bool { return len(rcv.all()) == 1 })
	start := time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Run took %v to stop", d)
	}
	it, err := st.OutboxByDeliveryID(rcv.all()[0].id)
	if err != nil || it.State != store.OutboxPending || it.Attempts != 0 {
		t.Fatalf("after shutdown: %+v, %v", it, err)
	}
}

// Many notifications from many goroutines: each delivered exactly once (the receiver always
// answers 200), never two attempts of one item at the same time.
func TestConcurrentNotify(t *testing.T) { eachStore(t, testConcurrentNotify) }

func testConcurrentNotify(t *testing.T, open func() *store.Store) {
	st := open()
	var inflight sync.Map
	var dup atomic.Int32
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		if _, busy := inflight.LoadOrStore(h.id, true); busy {
			dup.Add(1)
		}
		time.Sleep(time.Millisecond)
		inflight.Delete(h.id)
		return 200
	})
	o := testOptions()
	o.Workers = 16
	q := New(st, o)
	run(t, q)
	const senders, each = 8, 40
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if err := q.NotifySession("APtest", fmt.Sprint("S", g%4), rcv.URL+"/n", url.Values{"g": {strconv.Itoa(g)}, "i": {strconv.Itoa(i)}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	eventually(t, 20*time.Second, "all delivered", func() bool {
		n, _ := st.CountOutbox(store.OutboxDelivered)
		return n == senders*each
	})
	seen := map[string]bool{}
	for _, h := range rcv.all() {
		if seen[h.id] {
			t.Errorf("delivery %s posted twice", h.id)
		}
		seen[h.id] = true
		if !h.verifiedOK {
			t.Errorf("bad signature on %s", h.id)
		}
	}
	if len(seen) != senders*each || dup.Load() != 0 {
		t.Fatalf("%d distinct deliveries, %d concurrent duplicates", len(seen), dup.Load())
	}
}

// One session's notifications arrive in order, even with many workers and uneven receiver
// latency; the next is not sent before the previous one was answered.
func TestSessionOrder(t *testing.T) {
	st := openStore(t, "")
	var mu sync.Mutex
	busy := map[string]bool{}
	overlap := 0
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		s := h.form.Get("session")
		mu.Lock()
		if busy[s] {
			overlap++
		}
		busy[s] = true
		mu.Unlock()
		seq, _ := strconv.Atoi(h.form.Get("seq"))
		time.Sleep(time.Duration((seq*7)%5) * time.Millisecond)
		mu.Lock()
		busy[s] = false
		mu.Unlock()
		return 200
	})
	q := New(st, testOptions())
	run(t, q)
	const sessions, each = 12, 20
	var wg sync.WaitGroup
	for s := range sessions {
		wg.Go(func() {
			for i := range each {
				p := url.Values{"session": {fmt.Sprint("S", s)}, "seq": {strconv.Itoa(i)}}
				if err := q.NotifySession("APtest", fmt.Sprint("S", s), rcv.URL+"/n", p); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	eventually(t, 20*time.Second, "all delivered", func() bool {
		n, _ := st.CountOutbox(store.OutboxDelivered)
		return n == sessions*each
	})
	next := map[string]int{}
	for _, h := range rcv.all() {
		s, seq := h.form.Get("session"), h.form.Get("seq")
		if seq != strconv.Itoa(next[s]) {
			t.Fatalf("session %s: got seq %s, want %d", s, seq, next[s])
		}
		next[s]++
	}
	if overlap != 0 {
		t.Fatalf("%d deliveries overlapped another of the same session", overlap)
	}
}

// An earlier item that fails is retried before the next one of its session is tried at all,
// on every attempt, not only the first.
func TestSessionOrderFailedFirstAttempt(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		if h.form.Get("seq") == "0" && h.attempt != "3" {
			return 500
		}
		return 200
	})
	o := testOptions()
	o.MinBackoff = 50 * time.Millisecond
	q := New(st, o)
	run(t, q)
	for i := range 3 {
		if err := q.NotifySession("APtest", "S", rcv.URL+"/n", url.Values{"seq": {strconv.Itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 5 {
		h := rcv.wait(t, 5*time.Second)
		got = append(got, h.form.Get("seq")+"/"+h.attempt)
	}
	if fmt.Sprint(got) != "[0/1 0/2 0/3 1/1 2/1]" {
		t.Fatalf("order %v", got)
	}
}

// Many sessions against a receiver that fails often: no item of a session is attempted
// before every earlier item of it was delivered.
func TestSessionOrderEveryAttempt(t *testing.T) { eachStore(t, testSessionOrderEveryAttempt) }

func testSessionOrderEveryAttempt(t *testing.T, open func() *store.Store) {
	st := open()
	var mu sync.Mutex
	delivered := map[string]int{} // session -> how many delivered (the next seq due)
	var violations []string
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		s := h.form.Get("session")
		seq, _ := strconv.Atoi(h.form.Get("seq"))
		mu.Lock()
		defer mu.Unlock()
		if seq > delivered[s] {
			violations = append(violations, fmt.Sprintf("%s seq %d attempted with %d delivered", s, seq, delivered[s]))
		}
		if n%3 != 0 { // two of three attempts fail
			return 503
		}
		if seq == delivered[s] {
			delivered[s]++
		}
		return 200
	})
	o := testOptions()
	o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	q := New(st, o)
	run(t, q)
	const sessions, each = 8, 6
	for i := range each {
		for s := range sessions {
			p := url.Values{"session": {fmt.Sprint("S", s)}, "seq": {strconv.Itoa(i)}}
			if err := q.NotifySession("APtest", fmt.Sprint("S", s), rcv.URL+"/n", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, 30*time.Second, "all delivered", func() bool {
		n, _ := st.CountOutbox(store.OutboxDelivered)
		return n == sessions*each
	})
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Fatalf("%d out-of-order attempts, e.g. %v", len(violations), violations[0])
	}
}

// A session's head that is given up (MaxAge) lets the rest of the session go.
func TestSessionGiveUpUnblocks(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		if h.form.Get("seq") == "0" {
			return 500
		}
		return 200
	})
	o := testOptions()
	o.MaxAge = 300 * time.Millisecond
	q := New(st, o)
	run(t, q)
	if err := q.NotifySession("APtest", "S", rcv.URL+"/n", url.Values{"seq": {"0"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := q.NotifySession("APtest", "S", rcv.URL+"/n", url.Values{"seq": {"1"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "head given up, next delivered", func() bool {
		f, _ := st.CountOutbox(store.OutboxFailed)
		d, _ := st.CountOutbox(store.OutboxDelivered)
		return f == 1 && d == 1
	})
	var last0 time.Time
	for _, h := range rcv.all() {
		switch h.form.Get("seq") {
		case "0":
			last0 = h.arrived
		case "1":
			if h.arrived.Before(last0) || last0.IsZero() {
				t.Fatalf("seq 1 attempted before seq 0 was given up")
			}
		}
	}
}

// lockStore takes the database's write lock from another connection, as another process
// would, until the returned func is called. Writes meanwhile fail with SQLITE_BUSY after the
// store's busy timeout. It waits for a write the store has under way (SQLite answers BUSY at
// once to a connection without a busy timeout). It may be called from a handler's goroutine:
// it reports, rather than ends the test, when it cannot take the lock.
func lockStore(t *testing.T, path string) (unlock func(), err error) {
	db, err := sql.Open("sqlite", path+"?_busy_timeout=10000")
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		db.Close()
		return nil, err
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		db.Close()
		return nil, err
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock, nil
}

// While the database cannot be written, notifications are kept in memory in order and
// stored (and delivered) once it can, without a restart; a delivery whose outcome could not
// be recorded is not posted again.
func TestStoreUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivrd.db")
	st := openStore(t, path)
	var unlock func()
	locked := make(chan struct{})
	rcv := newReceiver(t, testToken, func(h hit, n int) int {
		if h.form.Get("seq") == "0" && unlock == nil {
			var err error
			unlock, err = lockStore(t, path) // the outcome of this delivery cannot be recorded
			if err != nil {
				t.Errorf("lock the store: %v", err)
				unlock = func() {}
			}
			close(locked)
		}
		return 200
	})
	var storeErrs atomic.Int32
	o := testOptions()
	o.OnStoreError = func(error) { storeErrs.Add(1) }
	q := New(st, o)
	run(t, q)
	if err := q.NotifySession("APtest", "S", rcv.URL+"/n", url.Values{"seq": {"0"}}); err != nil {
		t.Fatal(err)
	}
	<-locked
	// The store is locked: these wait out its busy timeout, then are held in memory.
	start := time.Now()
	for i := 1; i <= 3; i++ {
		if err := q.NotifySession("APtest", "S", rcv.URL+"/n", url.Values{"seq": {strconv.Itoa(i)}}); err != nil {
			t.Fatalf("Notify while the store is locked: %v", err)
		}
	}
	if q.Held() != 3 {
		t.Fatalf("held %d, want 3", q.Held())
	}
	t.Logf("Notify calls while locked took %v; %d store errors reported", time.Since(start).Round(time.Millisecond), storeErrs.Load())
	if storeErrs.Load() == 0 {
		t.Fatal("OnStoreError never called")
	}
	unlock()
	eventually(t, 15*time.Second, "all stored and delivered", func() bool {
		n, _ := st.CountOutbox(store.OutboxDelivered)
		return n == 4 && q.Held() == 0
	})
	var got []string
	for _, h := range rcv.all() {
		got = append(got, h.form.Get("seq")+"/"+h.attempt)
	}
	if fmt.Sprint(got) != "[0/1 1/1 2/1 3/1]" {
		t.Fatalf("deliveries %v, want each once, in order", got)
	}
}

// Delivery latency: posted soon after Notify, with many in flight (target p99 ≤ 1 s).
func TestLatency(t *testing.T) {
	st := openStore(t, "")
	rcv := newReceiver(t, testToken, func(hit, int) int { time.Sleep(2 * time.Millisecond); return 200 })
	q := New(st, testOptions())
	run(t, q)
	const n = 400
	sent := make([]time.Time, n)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				sent[i] = time.Now()
				if err := q.NotifySession("APtest", fmt.Sprint("S", i%50), rcv.URL+"/n", url.Values{"i": {strconv.Itoa(i)}}); err != nil {
					t.Error(err)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	var lat []time.Duration
	for range n {
		h := rcv.wait(t, 10*time.Second)
		i, _ := strconv.Atoi(h.form.Get("i"))
		lat = append(lat, h.arrived.Sub(sent[i]))
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := lat[n/2], lat[n*99/100]
	t.Logf("latency p50 %v p99 %v max %v", p50, p99, lat[n-1])
	if limit := time.Second * latencyFactor; p99 > limit {
		t.Fatalf("p99 latency %v > %v", p99, limit)
	}
}

// Flush returns once what is due has gone out (or failed its attempt and waits for a retry),
// and stops waiting when its context ends.
func TestFlush(t *testing.T) {
	st := openStore(t, "")
	release := make(chan struct{})
	slow := newReceiver(t, testToken, func(hit, int) int { <-release; return 200 })
	failing := newReceiver(t, testToken, func(hit, int) int { return 500 })
	o := testOptions()
	o.MinBackoff = time.Hour
	q := New(st, o)
	run(t, q)
	for _, u := range []string{slow.URL, failing.URL} {
		if err := q.Notify("APtest", u+"/n", nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if n := q.Flush(ctx); n != 1 {
		t.Fatalf("Flush with a delivery in flight returned %d still due, want 1", n)
	}
	close(release)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	start := time.Now()
	if n := q.Flush(ctx2); n != 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("Flush: %d still due after %v", n, time.Since(start))
	}
	if d, _ := st.CountOutbox(store.OutboxDelivered); d != 1 {
		t.Fatalf("%d delivered", d)
	}
	if p, _ := st.CountOutbox(store.OutboxPending); p != 1 {
		t.Fatalf("%d pending (the failed one waits for its retry)", p)
	}
}

// An attempt whose worker waits on a locked store past its lease is claimed again before its
// result is taken: that second claim is parked, not posted again, and settled by the result
// (TestStoreUnavailable posted seq 0 twice under -race before this).
func TestReclaimWhileAttemptInFlight(t *testing.T) {
	errLocked := errors.New("database is locked")
	for _, tc := range []struct {
		name       string
		res        result
		postsAgain bool
		delivered  int
	}{
		{"posted, not recorded", result{claimed: 0, attempts: 1, delivered: true, markErr: errLocked}, false, 1},
		{"failed, not recorded", result{claimed: 0, attempts: 1, markErr: errLocked}, true, 0},
		{"failed, recorded", result{claimed: 0, attempts: 1}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, "")
			o := testOptions()
			o.Lease = 20 * time.Millisecond // claims run out on the database's clock
			o.Workers = 4                   // room to claim while one attempt is in flight
			q := New(st, o)
			if err := q.Notify("APtest", "http://127.0.0.1:9/n", nil); err != nil {
				t.Fatal(err)
			}
			work := make(chan store.OutboxItem, q.o.Workers)
			d := newDispatcher(q, work)
			now := time.Now()
			d.dispatch(now)
			it := <-work
			time.Sleep(2 * o.Lease)
			d.dispatch(time.Now()) // the lease ran out; the worker has not answered
			if len(work) != 0 {
				t.Fatal("an item in flight was handed out again")
			}
			if len(d.parked) != 1 {
				t.Fatalf("%d parked, want the item claimed again", len(d.parked))
			}
			tc.res.id = it.ID
			d.finish(tc.res)
			if got := len(work) == 1; got != tc.postsAgain {
				t.Fatalf("attempted again: %v, want %v", got, tc.postsAgain)
			}
			d.retryStore(now.Add(time.Second))
			if n, _ := st.CountOutbox(store.OutboxDelivered); n != tc.delivered {
				t.Fatalf("%d delivered, want %d", n, tc.delivered)
			}
		})
	}
}
