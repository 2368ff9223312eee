package telephony

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// A real sipp call: we answer, play a 1.5 s 2 kHz tone and tap what the caller sends (a 1 s
// 1 kHz tone after a 1 s pause), then hang up.
func TestCallAudioBothWays(t *testing.T) {
	t.Parallel()
	type outcome struct {
		leg        *Leg
		answeredAt time.Time
		playErr    error
		hangupErr  error
	}
	got := make(chan outcome, 1)
	rec := &recorder{}
	s := startServer(t, func(l *Leg) {
		var o outcome
		o.leg = l
		defer func() { got <- o }()
		l.SetTap(rec)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Answer(ctx); err != nil {
			o.playErr = err
			return
		}
		o.answeredAt = time.Now()
		o.playErr = l.Play(ctx, tone(2000, 1500*time.Millisecond, 8000))
		// The caller's tone ends 2 s after the answer; give it time to arrive.
		time.Sleep(time.Until(o.answeredAt.Add(2300 * time.Millisecond)))
		o.hangupErr = l.Hangup()
	})

	res := callSendingTone(t, s, time.Second, time.Second)
	o := <-got
	if o.playErr != nil || o.hangupErr != nil {
		t.Fatalf("play: %v, hangup: %v", o.playErr, o.hangupErr)
	}
	if !res.Answered || !res.ByeFromServer {
		t.Fatalf("answered %v, bye from server %v (status %d)\n%s", res.Answered, res.ByeFromServer, res.Status, res.Trace)
	}
	waitDone(t, o.leg, 2*time.Second)
	if got := o.leg.From(); got != "+6511111111" {
		t.Errorf("From = %q", got)
	}
	if got := o.leg.To(); got != "+6500000001" {
		t.Errorf("To = %q", got)
	}
	if o.leg.EndedAt().IsZero() || o.leg.EndedAt().Before(o.answeredAt) {
		t.Errorf("EndedAt = %v, answered at %v", o.leg.EndedAt(), o.answeredAt)
	}

	in, out := rec.frames()
	// Inbound: 1 kHz from about 1 s to 2 s after the answer, nothing during the silent pause.
	// (Lower bounds are tight; upper bounds allow for a loaded machine.)
	first, last, n := toneSpan(in, 1000)
	if n < 45 {
		t.Fatalf("only %d inbound frames carry 1 kHz (of %d)", n, len(in))
	}
	start, span := first.Sub(o.answeredAt), last.Sub(first)
	if start < 800*time.Millisecond || start > 1600*time.Millisecond || span < 800*time.Millisecond || span > 1500*time.Millisecond {
		t.Errorf("caller's tone arrived from %v after answer for %v, want about 1 s for 1 s", start, span)
	}
	if _, _, n := toneSpan(in, 2000); n > 0 {
		t.Errorf("%d inbound frames carry our own 2 kHz", n)
	}
	for _, f := range in {
		if len(f.pcm) != audio.FrameSamples {
			t.Fatalf("inbound frame of %d samples", len(f.pcm))
		}
		if d := f.at.Sub(o.answeredAt); d < 800*time.Millisecond {
			t.Fatalf("inbound audio %v after answer, during the caller's silent pause", d)
		}
	}
	// Outbound: 75 frames of 2 kHz, paced in real time over 1.5 s.
	first, last, n = toneSpan(out, 2000)
	if n != 75 || len(out) != 75 {
		t.Fatalf("%d of %d outbound frames carry 2 kHz, want 75 of 75", n, len(out))
	}
	if span := last.Sub(first); span < 1440*time.Millisecond || span > 3*time.Second {
		t.Errorf("outbound frames span %v, want about 1.48 s", span)
	}
	// And the caller heard all of it.
	heard := squeeze(res.Heard)
	if d := audio.Duration(len(heard)); d < 1480*time.Millisecond || d > 1520*time.Millisecond {
		t.Errorf("caller heard %v of audio, want 1.5 s", d)
	}
	if share := toneShare(heard, 2000); share < 0.9 {
		t.Errorf("caller's audio is %.2f 2 kHz", share)
	}
}

// The caller hangs up while we play: Done closes and Play returns ErrCallEnded.
func TestCallerHangsUp(t *testing.T) {
	t.Parallel()
	type outcome struct {
		leg     *Leg
		playErr error
		playEnd time.Time
	}
	got := make(chan outcome, 1)
	s := startServer(t, func(l *Leg) {
		o := outcome{leg: l}
		defer func() { got <- o }()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := l.Answer(ctx); err != nil {
			o.playErr = err
			return
		}
		o.playErr = l.Play(ctx, tone(440, 10*time.Second, 6000))
		o.playEnd = time.Now()
	})
	res, err := testpeer.Call{
		Target: s.Addr(), Number: "100", HangupAfter: 1500 * time.Millisecond, Timeout: 15 * time.Second,
	}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if !res.Answered || res.ByeFromServer {
		t.Fatalf("answered %v, bye from server %v", res.Answered, res.ByeFromServer)
	}
	o := <-got
	if !errors.Is(o.playErr, ErrCallEnded) {
		t.Fatalf("Play = %v, want ErrCallEnded", o.playErr)
	}
	// sipp stamps its trace just after sending, so we may even appear a little early.
	if d := o.playEnd.Sub(res.ByeAt); d < -20*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("Play returned %v after sipp sent BYE, want promptly", d)
	}
	waitDone(t, o.leg, time.Second)
	if err := o.leg.Play(context.Background(), tone(440, time.Second, 6000)); !errors.Is(err, ErrCallEnded) {
		t.Errorf("Play after end = %v", err)
	}
	if err := o.leg.Hangup(); err != nil {
		t.Errorf("Hangup after end = %v", err)
	}
	if err := o.leg.Answer(context.Background()); !errors.Is(err, ErrCallEnded) {
		t.Errorf("Answer after end = %v, want ErrCallEnded", err)
	}
}

// Reject(404) while ringing: sipp sees 404.
func TestReject(t *testing.T) {
	t.Parallel()
	got := make(chan error, 1)
	legs := make(chan *Leg, 1)
	s := startServer(t, func(l *Leg) {
		legs <- l
		time.Sleep(300 * time.Millisecond) // ringing for a while
		got <- l.Reject(404)
	})
	res, err := testpeer.Call{Target: s.Addr(), Number: "999", Timeout: 10 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if res.Answered || res.Status != 404 {
		t.Fatalf("answered %v, status %d, want 404\n%s", res.Answered, res.Status, res.Trace)
	}
	if err := <-got; err != nil {
		t.Fatalf("Reject: %v", err)
	}
	l := <-legs
	waitDone(t, l, time.Second)
	if err := l.Answer(context.Background()); !errors.Is(err, ErrCallEnded) {
		t.Errorf("Answer after reject = %v", err)
	}
	if err := l.Reject(486); !errors.Is(err, ErrCallEnded) {
		t.Errorf("second Reject = %v", err)
	}
}
