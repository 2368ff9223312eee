package telephony

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// Play cancelled half-way stops sending at once, and the leg's next Play is paced as usual;
// AfterEnd functions run once the call ends, including one added after the end.
func TestPlayCancelThenPlayAgain(t *testing.T) {
	t.Parallel()
	type outcome struct {
		cancelErr  error
		cancelTook time.Duration
		sentBefore int // 20 ms frames tapped during the cancelled Play
		sentAfter  int // frames tapped within 300 ms after it returned
		secondErr  error
		secondTook time.Duration
		ended      chan string
	}
	got := make(chan *outcome, 1)
	rec := &recorder{}
	s := startServer(t, func(l *Leg) {
		o := &outcome{ended: make(chan string, 2)}
		defer func() { got <- o }()
		l.SetTap(rec)
		l.AfterEnd(func() { o.ended <- "before" })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Answer(ctx); err != nil {
			o.cancelErr = err
			return
		}
		pctx, pcancel := context.WithTimeout(ctx, 400*time.Millisecond)
		t0 := time.Now()
		o.cancelErr = l.Play(pctx, tone(440, 5*time.Second, 6000))
		o.cancelTook = time.Since(t0)
		pcancel()
		_, out := rec.frames()
		o.sentBefore = len(out)
		time.Sleep(300 * time.Millisecond)
		_, out = rec.frames()
		o.sentAfter = len(out) - o.sentBefore

		t0 = time.Now()
		o.secondErr = l.Play(ctx, tone(880, 500*time.Millisecond, 6000))
		o.secondTook = time.Since(t0)
		_ = l.Hangup()
		waitDone(t, l, 2*time.Second)
		l.AfterEnd(func() { o.ended <- "after" })
	})
	res, err := testpeer.Call{Target: s.Addr(), Number: "100", Timeout: 15 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	o := <-got
	if !errors.Is(o.cancelErr, context.DeadlineExceeded) {
		t.Fatalf("cancelled Play = %v, want DeadlineExceeded", o.cancelErr)
	}
	if o.cancelTook < 380*time.Millisecond || o.cancelTook > 600*time.Millisecond {
		t.Errorf("cancelled Play returned after %v, want about 400 ms", o.cancelTook)
	}
	if o.sentBefore < 17 || o.sentBefore > 26 {
		t.Errorf("%d frames sent in the 400 ms before the cancel, want about 20", o.sentBefore)
	}
	if o.sentAfter != 0 {
		t.Errorf("%d frames sent after the cancelled Play returned", o.sentAfter)
	}
	if o.secondErr != nil {
		t.Fatalf("second Play: %v", o.secondErr)
	}
	if o.secondTook < 480*time.Millisecond || o.secondTook > 700*time.Millisecond {
		t.Errorf("second Play of 500 ms took %v", o.secondTook)
	}
	// Each runs in its own goroutine, so in either order.
	ran := map[string]bool{}
	for range 2 {
		select {
		case got := <-o.ended:
			ran[got] = true
		case <-time.After(2 * time.Second):
			t.Fatalf("AfterEnd functions that ran: %v, want before and after", ran)
		}
	}
	if !ran["before"] || !ran["after"] {
		t.Errorf("AfterEnd functions that ran: %v, want before and after", ran)
	}
}
