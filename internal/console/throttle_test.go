package console

import (
	"fmt"
	"testing"
	"time"
)

// TestThrottle: five failures are free; then each locks the address out twice as long, up to
// the maximum; a success forgets; other addresses are not held up until the global rate is
// spent.
func TestThrottle(t *testing.T) {
	th := newThrottle()
	now := time.Unix(1_800_000_000, 0)
	for i, want := range []time.Duration{0, 0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if d := th.wait("a", now); d != 0 {
			t.Fatalf("failure %d: had to wait %v first", i+1, d)
		}
		if got := th.fail("a", now); got != want {
			t.Fatalf("failure %d: locked %v, want %v", i+1, got, want)
		}
		if got := th.wait("a", now); got != want {
			t.Fatalf("after failure %d: wait %v, want %v", i+1, got, want)
		}
		now = now.Add(want)
	}
	if d := th.wait("b", now); d != 0 {
		t.Fatalf("another address waits %v", d)
	}
	for range 20 {
		th.fail("a", now)
	}
	if d := th.wait("a", now); d != th.max {
		t.Fatalf("lockout %v, want the maximum %v", d, th.max)
	}
	th.ok("a")
	if d := th.wait("a", now.Add(time.Hour)); d != 0 {
		t.Fatalf("after a success: wait %v", d)
	}
}

func TestThrottleGlobal(t *testing.T) {
	th := newThrottle()
	now := time.Unix(1_800_000_000, 0)
	for i := range int(th.burst) {
		if d := th.wait(fmt.Sprint("addr", i), now); d != 0 {
			t.Fatalf("address %d waits %v within the burst", i, d)
		}
		th.fail(fmt.Sprint("addr", i), now)
	}
	d := th.wait("fresh", now)
	if d <= 0 || d > time.Second {
		t.Fatalf("after a burst from many addresses a new one waits %v, want (0, 1 s]", d)
	}
	if d := th.wait("fresh", now.Add(time.Second)); d != 0 {
		t.Fatalf("the global rate does not refill: %v", d)
	}
}

func TestThrottleBounded(t *testing.T) {
	th := newThrottle()
	th.maxKeys = 3
	now := time.Unix(1_800_000_000, 0)
	for i := range 10 {
		th.fail(fmt.Sprint("addr", i), now.Add(time.Duration(i)*time.Second))
	}
	if len(th.m) != 3 {
		t.Fatalf("%d addresses remembered, want at most 3", len(th.m))
	}
	if th.m["addr9"] == nil || th.m["addr0"] != nil {
		t.Fatal("the newest address was forgotten instead of the oldest")
	}
}
