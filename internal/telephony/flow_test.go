package telephony

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/diago/media"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

func TestMain(m *testing.M) {
	// diago's media package logs through a global logger (e.g. "bad sequence" for sipp's
	// replayed pcaps); it must be set before any media runs.
	if os.Getenv("TELEPHONY_LOG") == "" {
		media.SetDefaultLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	os.Exit(m.Run())
}

// The server answers only seconds after 180 Ringing (as when the app's first block comes
// late); two concurrent Answers share the one answer. The caller offers only PCMA: both
// directions use A-law.
func TestLateAnswer(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 4)
	rec := &recorder{}
	s := startServer(t, func(l *Leg) {
		time.Sleep(2 * time.Second)
		ctx := context.Background()
		l.SetTap(rec)
		a := make(chan error, 1)
		go func() { a <- l.Answer(ctx) }()
		errs <- l.Answer(ctx)
		errs <- <-a
		t0 := time.Now()
		errs <- l.Play(ctx, tone(2000, 500*time.Millisecond, 8000))
		time.Sleep(time.Until(t0.Add(800 * time.Millisecond))) // the caller's 0.5 s arrives
		errs <- l.Hangup()
	})
	t0 := time.Now()
	res, err := testpeer.Call{
		Target: s.Addr(), Number: "300", PCMA: true, Timeout: 10 * time.Second,
		Script: []testpeer.Step{testpeer.SendAudio(tone(1000, 500*time.Millisecond, 8000)), testpeer.Pause(3 * time.Second)},
	}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("leg: %v", err)
		}
	}
	if !res.Answered || !res.ByeFromServer {
		t.Fatalf("answered %v, bye from server %v", res.Answered, res.ByeFromServer)
	}
	if d := res.HeardAt.Sub(t0); d < 1900*time.Millisecond {
		t.Errorf("audio arrived %v after dialling, before the late answer", d)
	}
	heard := squeeze(res.Heard)
	if d := audio.Duration(len(heard)); d < 480*time.Millisecond || d > 520*time.Millisecond {
		t.Errorf("heard %v, want 0.5 s", d)
	}
	if share := toneShare(heard, 2000); share < 0.9 {
		t.Errorf("heard audio is %.2f 2 kHz", share)
	}
	in, _ := rec.frames()
	if _, _, n := toneSpan(in, 1000); n < 20 {
		t.Errorf("%d of %d inbound frames carry the caller's 1 kHz", n, len(in))
	}
}

// Hangup while ringing declines the call (603).
func TestHangupWhileRinging(t *testing.T) {
	t.Parallel()
	legc := make(chan *Leg, 1)
	s := startServer(t, func(l *Leg) {
		if err := l.Hangup(); err != nil {
			t.Errorf("Hangup: %v", err)
		}
		legc <- l
	})
	res, err := testpeer.Call{Target: s.Addr(), Number: "301", Timeout: 10 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if res.Status != 603 {
		t.Fatalf("status %d, want 603", res.Status)
	}
	l := <-legc
	waitDone(t, l, time.Second)
	if err := l.Hangup(); err != nil {
		t.Errorf("second Hangup: %v", err)
	}
}

// The caller gives up while ringing (CANCEL): Done closes and the leg can no longer answer.
func TestCallerCancels(t *testing.T) {
	t.Parallel()
	legc := make(chan *Leg, 1)
	s := startServer(t, func(l *Leg) { legc <- l })
	res, err := testpeer.Call{Target: s.Addr(), Number: "302", CancelAfter: 300 * time.Millisecond, Timeout: 10 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if res.Status != 487 {
		t.Fatalf("status %d, want 487\n%s", res.Status, res.Trace)
	}
	l := <-legc
	waitDone(t, l, time.Second)
	if err := l.Answer(context.Background()); !errors.Is(err, ErrCallEnded) {
		t.Errorf("Answer after CANCEL = %v", err)
	}
	if err := l.Reject(404); !errors.Is(err, ErrCallEnded) {
		t.Errorf("Reject after CANCEL = %v", err)
	}
}

// Ending Serve's context hangs up the calls still up.
func TestServeShutdownHangsUp(t *testing.T) {
	t.Parallel()
	if !testpeer.Available() {
		t.Skip("sipp not installed")
	}
	s, err := NewServer(Config{Listen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	legc := make(chan *Leg, 1)
	served := make(chan error, 1)
	go func() {
		served <- s.Serve(ctx, func(l *Leg) {
			if err := l.Answer(ctx); err != nil {
				t.Errorf("Answer: %v", err)
			}
			legc <- l
		})
	}()
	go func() {
		<-legc
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	res, err := testpeer.Call{Target: s.Addr(), Number: "303", Timeout: 10 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if !res.ByeFromServer {
		t.Errorf("no BYE at shutdown")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// checkTap fails the test when it is called after it was swapped out.
type checkTap struct {
	t       *testing.T
	retired atomic.Bool
	calls   atomic.Int64
}

func (c *checkTap) Inbound(pcm []int16, at time.Time)  { c.call() }
func (c *checkTap) Outbound(pcm []int16, at time.Time) { c.call() }
func (c *checkTap) call() {
	if c.retired.Load() {
		c.t.Error("tap called after SetTap replaced it")
	}
	c.calls.Add(1)
}

// Taps swapped while audio flows both ways: once SetTap returns, the old tap hears nothing.
func TestSetTapSwap(t *testing.T) {
	t.Parallel()
	var total atomic.Int64
	done := make(chan struct{})
	s := startServer(t, func(l *Leg) {
		defer close(done)
		ctx := context.Background()
		if err := l.Answer(ctx); err != nil {
			t.Errorf("Answer: %v", err)
			return
		}
		stop := make(chan struct{})
		go func() {
			defer close(stop)
			var prev *checkTap
			for i := 0; ; i++ {
				var next *checkTap
				if i%5 != 4 {
					next = &checkTap{t: t}
				}
				if next == nil {
					l.SetTap(nil)
				} else {
					l.SetTap(next)
				}
				if prev != nil {
					prev.retired.Store(true)
					total.Add(prev.calls.Load())
				}
				prev = next
				select {
				case <-l.Done():
					return
				case <-time.After(7 * time.Millisecond):
				}
			}
		}()
		if err := l.Play(ctx, tone(500, 1500*time.Millisecond, 5000)); err != nil {
			t.Errorf("Play: %v", err)
		}
		_ = l.Hangup()
		<-stop
	})
	res, err := testpeer.Call{
		Target: s.Addr(), Number: "304",
		Script:  []testpeer.Step{testpeer.SendAudio(tone(700, 1500*time.Millisecond, 5000)), testpeer.Pause(3 * time.Second)},
		Timeout: 10 * time.Second,
	}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	<-done
	if total.Load() < 50 {
		t.Errorf("only %d tap calls in total", total.Load())
	}
}

// Calls leave no sockets behind: RTP and RTCP sockets close with each call, the SIP socket
// with Serve.
func TestNoSocketLeak(t *testing.T) {
	if !testpeer.Available() {
		t.Skip("sipp not installed")
	}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc")
		}
		return len(ents)
	}
	calls := func(n int) {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := NewServer(Config{Listen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() {
			served <- s.Serve(ctx, func(l *Leg) {
				if err := l.Answer(ctx); err != nil {
					t.Errorf("Answer: %v", err)
					return
				}
				_ = l.Play(ctx, tone(800, 200*time.Millisecond, 4000))
				_ = l.Hangup()
			})
		}()
		for range n {
			if res, err := (testpeer.Call{Target: s.Addr(), Number: "1", Timeout: 5 * time.Second}).Run(ctx); err != nil || !res.ByeFromServer {
				t.Fatalf("call: %v, bye %v", err, res.ByeFromServer)
			}
		}
		cancel()
		if err := <-served; err != nil {
			t.Fatal(err)
		}
	}
	calls(1) // warm up: the runtime's poller and such stay
	before := fds()
	calls(3)
	var after int
	for range 20 { // sockets of the last call close as its handler returns
		if after = fds(); after <= before {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after > before {
		t.Errorf("%d file descriptors before, %d after 3 calls", before, after)
	}
}
