package api

import (
	"log/slog"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/tally"
)

// RateLimit configures the per-app request rate (--api-rate, --api-burst).
type RateLimit struct {
	Rate  float64 // requests per second per app; 0 or less: no limit
	Burst int     // requests an app may send at once; 0: twice Rate, at least 1
	// LogEvery is the period of the refusal log: one warn line per app per period with the
	// count (default 10 s).
	LogEvery time.Duration
	Log      *slog.Logger // required when Rate > 0
}

// Limiter is a token bucket per app: an app may send Burst requests at once and Rate per
// second on average; requests beyond are refused (error_rate_limit_exceeded). A nil *Limiter
// allows everything.
type Limiter struct {
	rate  float64
	burst float64
	now   func() time.Time
	tally *tally.Tally

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

// sweepEvery is how often buckets that have refilled (idle apps) are dropped.
const sweepEvery = time.Minute

// NewLimiter returns the limiter of c, or nil when c sets no rate. Close stops its log.
func NewLimiter(c RateLimit) *Limiter {
	if c.Rate <= 0 {
		return nil
	}
	burst := float64(c.Burst)
	if c.Burst <= 0 {
		burst = max(1, 2*c.Rate)
	}
	if c.LogEvery <= 0 {
		c.LogEvery = 10 * time.Second
	}
	return &Limiter{rate: c.Rate, burst: burst, now: time.Now, buckets: map[string]*bucket{},
		tally: tally.New(c.Log, c.LogEvery, "api: requests refused, rate limit exceeded", "app")}
}

// Allow takes a token from appID's bucket; false means the request is over the limit (and is
// counted for the log).
func (l *Limiter) Allow(appID string) bool {
	if l == nil {
		return true
	}
	now := l.now()
	l.mu.Lock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	b, ok := l.buckets[appID]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[appID] = b
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.at = now
	}
	ok = b.tokens >= 1
	if ok {
		b.tokens--
	}
	l.mu.Unlock()
	if !ok {
		l.tally.Add(appID)
	}
	return ok
}

// sweep drops the buckets that are full again (l.mu held).
func (l *Limiter) sweep(now time.Time) {
	l.lastSweep = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for id, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, id)
		}
	}
}

// Close logs the refusals not yet logged and stops the log.
func (l *Limiter) Close() {
	if l != nil {
		l.tally.Close()
	}
}
