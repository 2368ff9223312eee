package telephony

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// Two sipp callers, one sending 1 kHz and one 2 kHz, join a room: each hears the other and not
// itself, a tap sees its caller inbound and the other outbound, and the room ends when both
// have hung up.
func TestRoomTwoCallers(t *testing.T) {
	t.Parallel()
	room := NewRoom("conf-1")
	var mu sync.Mutex
	taps := map[string]*recorder{}
	maxLen := 0
	errs := make(chan error, 2)
	s := startServer(t, func(l *Leg) {
		rec := &recorder{}
		l.SetTap(rec)
		mu.Lock()
		taps[l.From()] = rec
		mu.Unlock()
		if err := l.Answer(context.Background()); err != nil {
			errs <- err
			return
		}
		leave, err := room.Join(l)
		if err != nil {
			errs <- err
			return
		}
		defer leave()
		mu.Lock()
		maxLen = max(maxLen, room.Len())
		mu.Unlock()
		errs <- nil
		<-l.Done()
	})

	callers := []struct {
		from string
		freq float64
	}{{"alice", 1000}, {"bob", 2000}}
	results := make([]testpeer.Result, len(callers))
	var wg sync.WaitGroup
	for i, c := range callers {
		wg.Go(func() {
			res, err := testpeer.Call{
				Target: s.Addr(), Number: "7000", From: c.from,
				Script: []testpeer.Step{
					testpeer.Pause(400 * time.Millisecond),
					testpeer.SendAudio(audio.SineWave(c.freq, 2*time.Second, 8000)),
				},
				HangupAfter: 2800 * time.Millisecond,
				Timeout:     15 * time.Second,
			}.Run(context.Background())
			if err != nil {
				t.Errorf("%s: %v\n%s", c.from, err, res.Trace)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("joining: %v", err)
		}
	}
	select {
	case <-room.Done():
	case <-time.After(2 * time.Second):
		t.Fatalf("room not done after both left (%d in it)", room.Len())
	}
	if maxLen != 2 {
		t.Errorf("room held at most %d", maxLen)
	}
	for i, c := range callers {
		other := callers[1-i]
		heard := results[i].Heard
		if d := toneTime(heard, other.freq, 0.6); d < 1500*time.Millisecond || d > 2100*time.Millisecond {
			t.Errorf("%s heard %s's %v Hz for %v, want about 2 s", c.from, other.from, other.freq, d)
		}
		if d := toneTime(heard, c.freq, 0.3); d > 50*time.Millisecond {
			t.Errorf("%s heard its own %v Hz for %v", c.from, c.freq, d)
		}
		mu.Lock()
		rec := taps[c.from]
		mu.Unlock()
		in, out := rec.frames()
		if n := countShare(in, c.freq, 0.6); n < 90 {
			t.Errorf("%s's tap: %d inbound frames of its own voice, want about 100", c.from, n)
		}
		if n := countShare(out, other.freq, 0.6); n < 90 {
			t.Errorf("%s's tap: %d outbound frames of %s, want about 100", c.from, n, other.from)
		}
		if n := countShare(out, c.freq, 0.3); n > 1 {
			t.Errorf("%s's tap: %d outbound frames of its own voice", c.from, n)
		}
	}
}
