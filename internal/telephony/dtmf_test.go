package telephony

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// sipp plays its shipped RFC 4733 pcaps (duration-0 start, triple end, the same timestamps
// each time a key repeats) and sends one key by SIP INFO: each key arrives exactly once, and
// no telephone-event packet reaches the tap as audio.
func TestDTMFFromSipp(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var keys []rune
	rec := &recorder{}
	legc := make(chan *Leg, 1)
	s := startServer(t, func(l *Leg) {
		legc <- l
		l.SetTap(rec)
		l.OnDTMF(func(k rune) {
			mu.Lock()
			keys = append(keys, k)
			mu.Unlock()
		})
		if err := l.Answer(context.Background()); err != nil {
			t.Errorf("Answer: %v", err)
		}
	})
	script := []testpeer.Step{testpeer.Pause(200 * time.Millisecond)}
	script = append(script, testpeer.SendDTMFs("15#1*0")...)
	script = append(script, testpeer.SendInfoDTMF('9'), testpeer.SendDTMF('1'))
	res, err := testpeer.Call{
		Target: s.Addr(), Number: "200", Script: script, HangupAfter: 4500 * time.Millisecond, Timeout: 15 * time.Second,
	}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if !res.Answered {
		t.Fatalf("not answered: %d", res.Status)
	}
	waitDone(t, <-legc, 2*time.Second)
	mu.Lock()
	got := string(keys)
	mu.Unlock()
	if got != "15#1*091" {
		t.Errorf("keys %q, want %q", got, "15#1*091")
	}
	if in, _ := rec.frames(); len(in) != 0 {
		t.Errorf("%d inbound tap frames (first has %d samples); the caller sent only events", len(in), len(in[0].pcm))
	}
}
