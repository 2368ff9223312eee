package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestBlocksRoom: two callers transferred into one conference room (the first with dest=room:,
// which makes it and names it in the API answer, the second with dest=room:<that id>) hear each
// other and not themselves; a Monitor on the first records the room.
func TestBlocksRoom(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// A (PCMU) sends 1 kHz 3–4 s after its answer and hangs up at 6 s; B (PCMA, answered about half a
	// second later) sends 2 kHz 1.5–2.5 s after its answer and hangs up at 5 s.
	resA := r.callIn(ctx, callerNum, []testpeer.Step{testpeer.Pause(3 * time.Second), testpeer.SendAudio(audio.SineWave(1000, time.Second, 12000))}, 6*time.Second)
	sidA := r.answered(callerNum)
	r.do("middle/monitor", "success_ok", url.Values{"session": {sidA}, "notify_url": {r.a.url("/monitor")}})
	mon := r.a.next(10 * time.Second)
	expect(t, mon, "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ongoing", "session": sidA})
	bodyA := r.do("end/transfer", "success_ok", url.Values{"session": {sidA}, "dest": {"room:"}, "tag": {"A"}, "notify_url": {r.a.url("/transfer")}})
	room := bodyA["room"]
	if room == "" || strings.HasPrefix(room, "room:") {
		t.Fatalf("transfer to a new room answered %v", bodyA)
	}

	// B speaks A-law, A µ-law: the room transcodes.
	resB := peerCall(ctx, t, testpeer.Call{Target: r.p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum2, PCMA: true, Timeout: 30 * time.Second,
		Script: []testpeer.Step{testpeer.Pause(1500 * time.Millisecond), testpeer.SendAudio(audio.SineWave(2000, time.Second, 12000))}, HangupAfter: 5 * time.Second})
	sidB := r.answered(callerNum2)
	if st := r.a.call("end/transfer", url.Values{"session": {sidB}, "dest": {"room:nosuchroom"}, "notify_url": {r.a.url("/transfer")}}); st != "error_invalid_room" {
		t.Fatalf("transfer to an unknown room: %s", st)
	}
	bodyB := r.do("end/transfer", "success_ok", url.Values{"session": {sidB}, "dest": {"room:" + room}, "tag": {"B"}, "notify_url": {r.a.url("/transfer")}})
	if bodyB["room"] != room {
		t.Fatalf("joining room %s answered %v", room, bodyB)
	}

	ra, rb := <-resA, <-resB
	for _, c := range []struct {
		name        string
		res         testpeer.Result
		hear, own   float64
		sid, caller string
	}{{"A", ra, 2000, 1000, sidA, callerNum}, {"B", rb, 1000, 2000, sidB, callerNum2}} {
		if !c.res.Answered || c.res.ByeFromServer {
			t.Fatalf("caller %s: answered=%v bye from ivrd=%v", c.name, c.res.Answered, c.res.ByeFromServer)
		}
		if got := toneLen(c.res.Heard, c.hear); got < 800*time.Millisecond {
			t.Fatalf("caller %s heard %v of the other's %.0f Hz", c.name, got, c.hear)
		}
		if got := toneLen(c.res.Heard, c.own); got > 100*time.Millisecond {
			t.Fatalf("caller %s heard its own %.0f Hz for %v", c.name, c.own, got)
		}
		t.Logf("caller %s heard the other's %.0f Hz for %v, its own tone for %v", c.name, c.hear, toneLen(c.res.Heard, c.hear), toneLen(c.res.Heard, c.own))
	}

	// Each transfer is notified when its caller leaves the room; A's Monitor recording follows.
	notes := map[string]note{}
	var final note
	for i := 0; i < 3; i++ {
		n := r.a.next(10 * time.Second)
		if n.path == "/monitor" {
			final = n
			continue
		}
		notes[n.params.Get("session")] = n
	}
	expect(t, final, "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ended", "session": sidA, "monitor_url": "*"})
	// A's Monitor recorded A and, through the room, B.
	pcm := recording(t, final.params.Get("monitor_url"))
	wantOne := ra.AnsweredAt.Add(3 * time.Second).Sub(mon.at)
	wantTwo := rb.AnsweredAt.Add(1500 * time.Millisecond).Sub(mon.at)
	one := oneSecondTone(t, pcm, 1000, wantOne, "A's 1 kHz in A's monitor recording")
	two := oneSecondTone(t, pcm, 2000, wantTwo, "B's 2 kHz in A's monitor recording")
	t.Logf("room %s; A's monitor MP3 %v: A's 1 kHz at %v (want %v), B's 2 kHz at %v (want %v)", room, audio.Duration(len(pcm)),
		one, wantOne.Round(time.Millisecond), two, wantTwo.Round(time.Millisecond))
	for sid, tag := range map[string]string{sidA: "A", sidB: "B"} {
		expect(t, notes[sid], "/transfer", map[string]string{"ivr_block": "transfer", "transfer_status": "answered", "room": room,
			"call_state": "ended", "tag": tag, "session": sid})
	}
	// ByeAt is sipp's log time of its BYE, which sipp writes after sending, and late when the
	// machine is loaded: allow it 100 ms.
	if notes[sidA].at.Before(ra.ByeAt.Add(-100*time.Millisecond)) || notes[sidB].at.Before(rb.ByeAt.Add(-100*time.Millisecond)) {
		t.Fatal("a transfer was notified before its caller left the room")
	}
	// Once everybody has left, the room is gone.
	resC := r.callIn(ctx, callerNum, nil, 0)
	sidC := r.answered(callerNum)
	if st := r.a.call("end/transfer", url.Values{"session": {sidC}, "dest": {"room:" + room}}); st != "error_invalid_room" {
		t.Fatalf("transfer to the emptied room: %s", st)
	}
	r.hangup(sidC)
	<-resC
}
