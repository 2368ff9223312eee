package console

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// throttle slows guessing at the sign-in form. Per client address (an IPv6 client's /64), a
// few failures are free; after them each failure locks that address out for twice as long as
// the one before (base, 2·base, ... up to max); a success forgets the address. Over all
// addresses together, failures beyond a global rate are refused too, so that many addresses
// cannot guess faster than one. Only failures count: a user who signs in is not held up.
type throttle struct {
	free      int           // failures per address before lockouts start
	base, max time.Duration // the first lockout, and the longest
	rate      float64       // failures a second over all addresses (token bucket)
	burst     float64
	maxKeys   int // addresses remembered; beyond, the oldest are forgotten

	mu     sync.Mutex
	m      map[string]*tries
	tokens float64
	filled time.Time
}

type tries struct {
	failures int
	until    time.Time // locked out until then
	last     time.Time
}

func newThrottle() *throttle {
	return &throttle{free: 5, base: time.Second, max: 15 * time.Minute, rate: 5, burst: 20, maxKeys: 10000,
		m: map[string]*tries{}, tokens: 20}
}

// clientKey is the address a request is counted under: its IP, an IPv6 address's /64.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// refill adds the global tokens earned since the last look.
func (t *throttle) refill(now time.Time) {
	if !t.filled.IsZero() {
		t.tokens = min(t.burst, t.tokens+now.Sub(t.filled).Seconds()*t.rate)
	}
	t.filled = now
}

// wait returns how long key must wait before it may try to sign in (0: now).
func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now)
	var d time.Duration
	if x := t.m[key]; x != nil && now.Before(x.until) {
		d = x.until.Sub(now)
	}
	if t.tokens < 1 {
		d = max(d, time.Duration((1-t.tokens)/t.rate*float64(time.Second)))
	}
	return d
}

// fail counts a failed sign-in of key and returns how long key is now locked out.
func (t *throttle) fail(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now)
	t.tokens = max(t.tokens-1, 0)
	x := t.m[key]
	if x == nil {
		t.forgetOld(now)
		x = &tries{}
		t.m[key] = x
	}
	x.failures++
	x.last = now
	if over := x.failures - t.free; over > 0 {
		d := t.base
		for i := 1; i < over && d < t.max; i++ {
			d *= 2
		}
		x.until = now.Add(min(d, t.max))
		return min(d, t.max)
	}
	return 0
}

// ok forgets key's failures after it signed in.
func (t *throttle) ok(key string) {
	t.mu.Lock()
	delete(t.m, key)
	t.mu.Unlock()
}

// forgetOld makes room for one more address: it drops addresses quiet for longer than the
// longest lockout, and when that is not enough, the longest quiet one.
func (t *throttle) forgetOld(now time.Time) {
	if len(t.m) < t.maxKeys {
		return
	}
	var oldest string
	for k, x := range t.m {
		if now.Sub(x.last) > t.max {
			delete(t.m, k)
		} else if oldest == "" || x.last.Before(t.m[oldest].last) {
			oldest = k
		}
	}
	if len(t.m) >= t.maxKeys {
		delete(t.m, oldest)
	}
}
