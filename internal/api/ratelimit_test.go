package api

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testlog"
)

func TestLimiter(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before the requests
		app   string
		n     int    // requests
		want  string // allowed (+) or refused (-) per request
	}
	cases := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{"burst then refuse", 1, 3, []step{{0, "A", 4, "+++-"}}},
		{"default burst is twice the rate", 2, 0, []step{{0, "A", 5, "++++-"}}},
		{"default burst at least one", 0.2, 0, []step{{0, "A", 2, "+-"}, {4 * time.Second, "A", 1, "-"}, {time.Second, "A", 1, "+"}}},
		{"refill at the rate", 10, 10, []step{{0, "A", 11, "++++++++++-"}, {100 * time.Millisecond, "A", 2, "+-"}, {350 * time.Millisecond, "A", 4, "+++-"}}},
		{"refill capped at burst", 1, 2, []step{{0, "A", 2, "++"}, {time.Hour, "A", 3, "++-"}}},
		{"apps are separate", 1, 1, []step{{0, "A", 2, "+-"}, {0, "B", 2, "+-"}, {0, "A", 1, "-"}}},
		{"fractional rate", 0.5, 1, []step{{0, "A", 1, "+"}, {time.Second, "A", 1, "-"}, {time.Second, "A", 1, "+"}}},
		{"refused requests take nothing", 1, 1, []step{{0, "A", 1, "+"}, {500 * time.Millisecond, "A", 3, "---"}, {500 * time.Millisecond, "A", 1, "+"}}},
		{"idle app swept, starts full", 1, 2, []step{{0, "A", 2, "++"}, {2 * time.Minute, "B", 1, "+"}, {0, "A", 3, "++-"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, logs := testlog.New()
			l := NewLimiter(RateLimit{Rate: c.rate, Burst: c.burst, LogEvery: time.Hour, Log: log})
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			l.now = func() time.Time { return clock }
			refused := 0
			for i, s := range c.steps {
				clock = clock.Add(s.after)
				got := ""
				for range s.n {
					if l.Allow(s.app) {
						got += "+"
					} else {
						got += "-"
						refused++
					}
				}
				if got != s.want {
					t.Fatalf("step %d (%s after %v): %s, want %s", i, s.app, s.after, got, s.want)
				}
			}
			l.Close()
			total := 0
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var n int
				if _, err := fmt.Sscanf(line[strings.Index(line, "count="):], "count=%d", &n); err == nil {
					total += n
				}
			}
			if total != refused {
				t.Fatalf("log counts %d refusals, want %d:\n%s", total, refused, logs.String())
			}
		})
	}
	if NewLimiter(RateLimit{}) != nil || !(*Limiter)(nil).Allow("A") {
		t.Fatal("no rate must mean no limiter, allowing everything")
	}
}
