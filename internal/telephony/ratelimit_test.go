package telephony

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1000, 0)
	type step struct {
		src   netip.Addr
		at    time.Duration
		ok    bool
		retry int
	}
	tests := []struct {
		name  string
		rate  float64
		steps []step
	}{
		{"off", 0, []step{{a, 0, true, 0}, {a, 0, true, 0}, {a, 0, true, 0}}},
		{"2 a second: a burst of 2, then 1 every 500 ms", 2, []step{
			{a, 0, true, 0}, {a, 0, true, 0}, {a, 0, false, 1}, {a, 400 * time.Millisecond, false, 1},
			{a, 500 * time.Millisecond, true, 0}, {a, 500 * time.Millisecond, false, 1}, {a, 3 * time.Second, true, 0}}},
		{"sources are apart", 1, []step{{a, 0, true, 0}, {a, 0, false, 1}, {b, 0, true, 0}}},
		{"0.2 a second: Retry-After counts the seconds to the next token", 0.2, []step{
			{a, 0, true, 0}, {a, 0, false, 5}, {a, 3 * time.Second, false, 2}, {a, 5 * time.Second, true, 0}}},
	}
	for _, tt := range tests {
		r := newRateLimiter(tt.rate, slog.New(slog.NewTextHandler(io.Discard, nil)))
		for i, s := range tt.steps {
			ok, retry := r.allow(s.src, t0.Add(s.at))
			if ok != s.ok || retry != s.retry {
				t.Errorf("%s: step %d: %v, %d; want %v, %d", tt.name, i, ok, retry, s.ok, s.retry)
			}
		}
	}
}

// Past maxRateSources the sources whose buckets have refilled are forgotten.
func TestRateLimiterForgets(t *testing.T) {
	r := newRateLimiter(1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Unix(1000, 0)
	for i := range maxRateSources {
		r.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0)
	}
	if ok, _ := r.allow(netip.MustParseAddr("192.0.2.1"), t0.Add(2*time.Second)); !ok || len(r.buckets) != 1 {
		t.Errorf("ok %v, %d sources followed; want the old ones forgotten", ok, len(r.buckets))
	}
}
