package telephony

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// waitUnmixedBy polls until l has left its bridge or room and returns when that was seen.
func waitUnmixedBy(l *Leg, d time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(d)
	for l.Mixed() {
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Now(), true
}

// countShare counts the frames in which freq carries more than share of the energy.
func countShare(frames []tapFrame, freq, share float64) int {
	n := 0
	for _, f := range frames {
		if toneShare(f.pcm, freq) > share {
			n++
		}
	}
	return n
}

// A sipp caller (1 kHz) is bridged with a dialled answerer (2 kHz): each hears the other and not
// itself; a prompt on the caller's leg is mixed over the far party for the caller alone; the
// caller's tap holds both parties; when the answerer hangs up the bridge ends and the caller's
// leg plays on its own again.
func TestBridgeCallerToAnswerer(t *testing.T) {
	t.Parallel()
	ansAddr, ansWait := startAnswerer(t, testpeer.Answerer{
		Script:      []testpeer.Step{testpeer.Pause(300 * time.Millisecond), testpeer.SendAudio(audio.SineWave(2000, 2500*time.Millisecond, 8000))},
		HangupAfter: 3 * time.Second,
	})
	type outcome struct {
		err                    string
		bridgedAt, promptStart time.Time
		promptTook             time.Duration
		calleeEnded, unmixedAt time.Time
		calleeFrom, calleeTo   string
	}
	got := make(chan outcome, 1)
	rec := &recorder{}
	var srv atomic.Pointer[Server]
	s := startServer(t, func(l *Leg) {
		var o outcome
		defer func() { got <- o }()
		fail := func(what string, err error) { o.err = what + ": " + err.Error() }
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		l.SetTap(rec)
		if err := l.Answer(ctx); err != nil {
			fail("answer", err)
			return
		}
		callee, outcome, err := srv.Load().Dial(ctx, DialOptions{Trunk: ansAddr, Dest: "+6590000003", CallerID: "6511111111"})
		if outcome != DialAnswered {
			o.err = "dial: " + string(outcome) + ": " + fmtErr(err)
			return
		}
		o.calleeFrom, o.calleeTo = callee.From(), callee.To()
		stop := Bridge(l, callee)
		defer stop()
		o.bridgedAt = time.Now()
		time.Sleep(time.Until(o.bridgedAt.Add(time.Second)))
		o.promptStart = time.Now()
		if err := l.Play(ctx, audio.SineWave(500, 400*time.Millisecond, 6000)); err != nil {
			fail("prompt while bridged", err)
			return
		}
		o.promptTook = time.Since(o.promptStart)
		<-callee.Done()
		o.calleeEnded = time.Now()
		var ok bool
		if o.unmixedAt, ok = waitUnmixedBy(l, time.Second); !ok {
			o.err = "caller still bridged after the answerer hung up"
			return
		}
		stop() // idempotent, harmless after the end
		if err := l.Play(ctx, audio.SineWave(700, 500*time.Millisecond, 6000)); err != nil {
			fail("play after the bridge", err)
			return
		}
		if err := l.Hangup(); err != nil {
			fail("hangup", err)
		}
	})
	srv.Store(s)

	res, err := testpeer.Call{
		Target: s.Addr(), Number: "6500000003", From: "6511111111",
		Script: []testpeer.Step{
			testpeer.Pause(300 * time.Millisecond),
			testpeer.SendAudio(audio.SineWave(1000, 2500*time.Millisecond, 8000)),
			testpeer.Pause(5 * time.Second),
		},
		Timeout: 15 * time.Second,
	}.Run(context.Background())
	if err != nil {
		t.Fatalf("caller: %v\n%s", err, res.Trace)
	}
	o := <-got
	if o.err != "" {
		t.Fatal(o.err)
	}
	ans, err := ansWait()
	if err != nil {
		t.Fatalf("answerer: %v\n%s", err, ans.Trace)
	}
	if !res.ByeFromServer || ans.ByeFromServer {
		t.Errorf("caller got our BYE %v; answerer got one %v (it hung up itself)", res.ByeFromServer, ans.ByeFromServer)
	}
	if o.calleeFrom != "6511111111" || o.calleeTo != "+6590000003" || ans.FromUser != "6511111111" {
		t.Errorf("dialled leg from %q to %q; answerer saw From %q", o.calleeFrom, o.calleeTo, ans.FromUser)
	}
	if d := o.promptTook; d < 390*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("Play while bridged took %v, want about 0.4 s", d)
	}
	if d := o.unmixedAt.Sub(o.calleeEnded); d > 100*time.Millisecond {
		t.Errorf("bridge ended %v after the answerer's leg", d)
	}

	// What each party heard (50 ms windows; the prompt overlaps the far party, so a shared
	// window still counts when the tone has 30 % of its energy).
	const th = 0.3
	checks := []struct {
		who      string
		pcm      []int16
		freq     float64
		min, max time.Duration
	}{
		{"caller hears the answerer", res.Heard, 2000, 2 * time.Second, 2600 * time.Millisecond},
		{"caller does not hear itself", res.Heard, 1000, 0, 100 * time.Millisecond},
		{"caller hears the bridged prompt", res.Heard, 500, 300 * time.Millisecond, 450 * time.Millisecond},
		{"caller hears the prompt after the bridge", res.Heard, 700, 400 * time.Millisecond, 550 * time.Millisecond},
		{"answerer hears the caller", ans.Heard, 1000, 2 * time.Second, 2600 * time.Millisecond},
		{"answerer does not hear itself", ans.Heard, 2000, 0, 100 * time.Millisecond},
		{"answerer does not hear the caller's prompt", ans.Heard, 500, 0, 50 * time.Millisecond},
	}
	for _, c := range checks {
		if d := toneTime(c.pcm, c.freq, th); d < c.min || d > c.max {
			t.Errorf("%s: %v Hz for %v, want %v..%v", c.who, c.freq, d, c.min, c.max)
		}
	}

	// The caller's tap: its own voice inbound, the far party (what it hears) outbound.
	in, out := rec.frames()
	if n := countShare(in, 1000, 0.6); n < 100 {
		t.Errorf("%d inbound frames of the caller's 1 kHz, want about 125", n)
	}
	if n := countShare(out, 2000, th); n < 100 {
		t.Errorf("%d outbound frames of the answerer's 2 kHz, want about 125", n)
	}
	if n := countShare(in, 2000, th); n > 2 {
		t.Errorf("%d inbound frames carry the answerer", n)
	}
	if n := countShare(out, 500, th); n < 18 || n > 22 {
		t.Errorf("%d outbound frames of the bridged prompt, want 20", n)
	}
}

// The caller hangs up: the bridge ends, and the dialled leg can be played to and hung up.
func TestBridgeCallerHangsUp(t *testing.T) {
	t.Parallel()
	ansAddr, ansWait := startAnswerer(t, testpeer.Answerer{
		Script: []testpeer.Step{testpeer.SendAudio(audio.SineWave(2000, 3*time.Second, 8000))},
	})
	type outcome struct {
		err                    string
		callerEnded, unmixedAt time.Time
	}
	got := make(chan outcome, 1)
	var srv atomic.Pointer[Server]
	s := startServer(t, func(l *Leg) {
		var o outcome
		defer func() { got <- o }()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := l.Answer(ctx); err != nil {
			o.err = "answer: " + err.Error()
			return
		}
		callee, outcome, _ := srv.Load().Dial(ctx, DialOptions{Trunk: ansAddr, Dest: "200"})
		if outcome != DialAnswered {
			o.err = "dial: " + string(outcome)
			return
		}
		defer callee.Hangup()
		Bridge(l, callee)
		<-l.Done()
		o.callerEnded = time.Now()
		var ok bool
		if o.unmixedAt, ok = waitUnmixedBy(callee, time.Second); !ok {
			o.err = "dialled leg still bridged after the caller hung up"
			return
		}
		if err := callee.Play(ctx, audio.SineWave(700, 300*time.Millisecond, 6000)); err != nil {
			o.err = "play after the bridge: " + err.Error()
		}
	})
	srv.Store(s)
	res, err := testpeer.Call{
		Target: s.Addr(), Number: "6500000004",
		Script:      []testpeer.Step{testpeer.SendAudio(audio.SineWave(1000, 3*time.Second, 8000))},
		HangupAfter: 1500 * time.Millisecond,
		Timeout:     15 * time.Second,
	}.Run(context.Background())
	if err != nil {
		t.Fatalf("caller: %v\n%s", err, res.Trace)
	}
	o := <-got
	if o.err != "" {
		t.Fatal(o.err)
	}
	if d := o.unmixedAt.Sub(o.callerEnded); d > 100*time.Millisecond {
		t.Errorf("bridge ended %v after the caller's leg", d)
	}
	ans, err := ansWait()
	if err != nil {
		t.Fatalf("answerer: %v\n%s", err, ans.Trace)
	}
	if !ans.ByeFromServer {
		t.Error("the answerer got no BYE")
	}
	if d := toneTime(ans.Heard, 1000, 0.6); d < time.Second || d > 1600*time.Millisecond {
		t.Errorf("answerer heard the caller for %v, want about 1.4 s", d)
	}
	if d := toneTime(ans.Heard, 700, 0.6); d < 250*time.Millisecond || d > 350*time.Millisecond {
		t.Errorf("answerer heard the later prompt for %v, want 0.3 s", d)
	}
	if d := toneTime(res.Heard, 2000, 0.6); d < time.Second {
		t.Errorf("caller heard the answerer for %v", d)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
