package ivr

import (
	"testing"
	"time"
)

// TestLive: the snapshot shows a call from its ring to its end, with its block, the Monitor
// recording and its pause; other apps' calls only to the operator's view ("").
func TestLive(t *testing.T) {
	r := newRig(t, Config{})
	one := func(app string) LiveCall {
		t.Helper()
		calls := r.e.Live(app)
		if len(calls) != 1 {
			t.Fatalf("Live(%q) = %+v, want one call", app, calls)
		}
		return calls[0]
	}
	c, sid := r.incoming()
	if got := one("A1"); got.Session != sid || got.From != "+6511111111" || got.To != "+6561234567" ||
		got.Phase != PhaseRinging || got.Block != "" || got.Recording || got.Started.IsZero() {
		t.Fatalf("ringing call: %+v", got)
	}
	if calls := r.e.Live("A2"); len(calls) != 0 {
		t.Fatalf("another app sees %+v", calls)
	}
	r.mustDo("monitor", Params{"session": sid, "notify_url": "http://app.test/n"})
	r.next() // ongoing: the recording runs
	r.mustDo("play", Params{"session": sid, "msg": "long", "notify_url": "http://app.test/p"})
	if got := one(""); got.Block != "play" || !got.Recording || got.Paused || got.Line != LineUp || got.Answered.IsZero() {
		t.Fatalf("playing, recorded call: %+v", got)
	}
	if st := r.e.PauseMonitor("A1", Params{"session": sid}).Status; st != StatusOK {
		t.Fatal(st)
	}
	if got := one("A1"); !got.Paused {
		t.Fatalf("paused call: %+v", got)
	}
	c.end()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.e.Live("")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("ended call still live: %+v", r.e.Live(""))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
