package telephony

import (
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"time"
)

const (
	// maxRateSources bounds how many source addresses the INVITE rate limiter follows; past
	// it, sources idle long enough to have a full bucket are forgotten first.
	maxRateSources = 65536
	// rateReportEvery is how often the refusals of one source are logged (with their count).
	rateReportEvery = 10 * time.Second
)

// rateLimiter is a token bucket per source address: rate tokens a second, at most burst.
type rateLimiter struct {
	rate, burst float64
	log         *slog.Logger

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens   float64
	last     time.Time
	refused  int       // refusals not logged yet
	reported time.Time // when refusals were last logged
}

// newRateLimiter limits each source to rate a second with bursts of one second's worth (at
// least one). A rate of 0 returns nil, which allows everything.
func newRateLimiter(rate float64, log *slog.Logger) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	return &rateLimiter{rate: rate, burst: max(rate, 1), log: log, buckets: map[netip.Addr]*bucket{}}
}

// allow takes a token for src at now. When there is none it returns false and the seconds
// until there will be one (for Retry-After), and logs the refusals of src now and then.
func (r *rateLimiter) allow(src netip.Addr, now time.Time) (bool, int) {
	if r == nil {
		return true, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[src]
	if b == nil {
		if len(r.buckets) >= maxRateSources {
			r.sweep(now)
		}
		b = &bucket{tokens: r.burst, last: now}
		if len(r.buckets) < maxRateSources {
			r.buckets[src] = b
		}
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	b.refused++
	if now.Sub(b.reported) >= rateReportEvery {
		r.log.Warn("INVITEs over the rate limit refused (503)", "source", src, "refused", b.refused, "rate", r.rate)
		b.refused, b.reported = 0, now
	}
	return false, max(1, int(math.Ceil((1-b.tokens)/r.rate)))
}

// sweep forgets the sources whose buckets have refilled (idle for a while); r.mu is held.
func (r *rateLimiter) sweep(now time.Time) {
	full := time.Duration(r.burst / r.rate * float64(time.Second))
	for a, b := range r.buckets {
		if now.Sub(b.last) >= full && b.refused == 0 {
			delete(r.buckets, a)
		}
	}
}
