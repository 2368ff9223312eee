package e2e

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestBlocksTransfer: Transfer connects the caller to a far party dialled through the trunk,
// under a running Monitor that records both; a busy far end with on_failure=continue gives the
// call back to the app.
func TestBlocksTransfer(t *testing.T) {
	t.Run("answered under monitor", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		r, sid, resc, far := twoTones(ctx, t)

		r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "tag": {"m"}, "notify_url": {r.a.url("/monitor")}})
		mon := r.a.next(10 * time.Second)
		expect(t, mon, "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ongoing"})
		body := r.do("end/transfer", "success_ok", url.Values{"session": {sid}, "dest": {farNumber}, "caller_id": {"+6561234567"},
			"tag": {"t"}, "notify_url": {r.a.url("/transfer")}})
		if _, ok := body["room"]; ok {
			t.Fatalf("transfer to a number answered with a room: %v", body)
		}
		if st := r.a.call("middle/play", url.Values{"session": {sid}}); st != "error_session_ended" {
			t.Fatalf("play after an accepted transfer: %s", st)
		}

		notes := r.a.nextTwo(15 * time.Second)
		tr := notes["/transfer"]
		expect(t, tr, "/transfer", map[string]string{"ivr_block": "transfer", "transfer_status": "answered", "call_state": "ended",
			"session": sid, "tag": "t", "from": "+" + callerNum, "to": number, "duration": "1", "date": "*"})
		final := notes["/monitor"]
		expect(t, final, "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ended", "session": sid, "tag": "m", "monitor_url": "*"})

		fres, cres := far(), <-resc
		if !fres.Answered || fres.ByeFromServer || fres.RequestUser != farNumber || fres.FromUser != "+6561234567" {
			t.Fatalf("far end: answered=%v bye from ivrd=%v INVITE for %q from %q", fres.Answered, fres.ByeFromServer, fres.RequestUser, fres.FromUser)
		}
		if !cres.Answered || !cres.ByeFromServer {
			t.Fatalf("caller: answered=%v bye from ivrd=%v", cres.Answered, cres.ByeFromServer)
		}
		// The transfer's notification comes once the transferred call has ended.
		if tr.at.Before(fres.ByeAt.Add(-100 * time.Millisecond)) { // sipp logs its BYE after sending it
			t.Fatalf("transfer notified at %v, before the far end hung up at %v", tr.at, fres.ByeAt)
		}
		// Each party heard the other.
		if got := toneLen(cres.Heard, 2000); got < 800*time.Millisecond {
			t.Fatalf("caller heard %v of the far party's 2 kHz", got)
		}
		if got := toneLen(fres.Heard, 1000); got < 800*time.Millisecond {
			t.Fatalf("far party heard %v of the caller's 1 kHz", got)
		}

		// The Monitor recording holds both parties, at their times.
		pcm := recording(t, final.params.Get("monitor_url"))
		length, want := audio.Duration(len(pcm)), cres.ByeAt.Sub(mon.at)
		if !near(length, want, 500*time.Millisecond) {
			t.Fatalf("monitor recording is %v, the monitored call %v", length, want)
		}
		wantOne := cres.AnsweredAt.Add(1500 * time.Millisecond).Sub(mon.at)
		wantTwo := fres.AnsweredAt.Add(3 * time.Second).Sub(mon.at)
		one := oneSecondTone(t, pcm, 1000, wantOne, "caller's 1 kHz in the recording")
		two := oneSecondTone(t, pcm, 2000, wantTwo, "far party's 2 kHz in the recording")
		t.Logf("monitor MP3 %v (call %v): 1 kHz at %v for %v (want %v), 2 kHz at %v for %v (want %v); transfer notified %v after the far end's BYE",
			length, want.Round(time.Millisecond), one.Start, one.Len(), wantOne.Round(time.Millisecond),
			two.Start, two.Len(), wantTwo.Round(time.Millisecond), tr.at.Sub(fres.ByeAt).Round(time.Millisecond))
	})

	t.Run("busy continue", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeBusy})
		r := newRig(t, "--sip-trunk", trunk)
		resc := r.callIn(ctx, callerNum, nil, 0)
		sid := r.answered(callerNum)
		r.do("end/transfer", "success_ok", url.Values{"session": {sid}, "dest": {farNumber}, "on_failure": {"continue"},
			"notify_url": {r.a.url("/transfer")}})
		tr := r.a.next(10 * time.Second)
		expect(t, tr, "/transfer", map[string]string{"ivr_block": "transfer", "transfer_status": "busy", "call_state": "ongoing", "session": sid})
		if fres := far(); fres.Status != 486 {
			t.Fatalf("far end answered %d", fres.Status)
		}
		tPlay := time.Now()
		r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"Sorry, the line is busy."}, "notify_url": {r.a.url("/play")}})
		expect(t, r.a.next(10*time.Second), "/play", map[string]string{"ivr_block": "play", "call_state": "ongoing", "session": sid})
		r.hangup(sid)
		cres := <-resc
		if rms := audio.RMS(heardFrom(cres, tPlay)); rms < 300 {
			t.Fatalf("caller did not hear the play after the failed transfer: RMS %.0f", rms)
		}
	})

	t.Run("caller leaves first", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeAnswer})
		r := newRig(t, "--sip-trunk", trunk)
		resc := r.callIn(ctx, callerNum, nil, 3500*time.Millisecond)
		sid := r.answered(callerNum)
		r.do("end/transfer", "success_ok", url.Values{"session": {sid}, "dest": {farNumber}, "msg": {"Connecting you."}, "notify_url": {r.a.url("/transfer")}})
		tr := r.a.next(10 * time.Second)
		expect(t, tr, "/transfer", map[string]string{"ivr_block": "transfer", "transfer_status": "answered", "call_state": "ended", "session": sid})
		cres, fres := <-resc, far()
		if !fres.Answered || !fres.ByeFromServer || cres.ByeFromServer {
			t.Fatalf("far end: answered=%v bye from ivrd=%v; caller got BYE=%v", fres.Answered, fres.ByeFromServer, cres.ByeFromServer)
		}
		if tr.at.Before(cres.ByeAt.Add(-100*time.Millisecond)) || fres.ByeAt.Sub(cres.ByeAt) > time.Second {
			t.Fatalf("caller left at %v, far end released at %v, transfer notified at %v", cres.ByeAt, fres.ByeAt, tr.at)
		}
		// The msg went to the caller only, before the far end was dialled.
		if heard := bursts(cres.Heard, 300, 400*time.Millisecond); len(heard) != 1 || !fres.AnsweredAt.After(cres.HeardAt.Add(heard[0].End)) {
			t.Fatalf("caller heard %v; far end answered %v after the caller's first packet", heard, fres.AnsweredAt.Sub(cres.HeardAt))
		}
		if rms := audio.RMS(fres.Heard); rms > 100 {
			t.Fatalf("far end heard RMS %.0f: the transfer msg leaked to it", rms)
		}
		r.a.quiet(t, 300*time.Millisecond)
	})

	t.Run("unanswered hangs up", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeNoAnswer})
		r := newRig(t, "--sip-trunk", trunk, "--ring-timeout", "1s")
		resc := r.callIn(ctx, callerNum, nil, 0)
		sid := r.answered(callerNum)
		r.do("end/transfer", "success_ok", url.Values{"session": {sid}, "dest": {farNumber}, "notify_url": {r.a.url("/transfer")}})
		expect(t, r.a.next(10*time.Second), "/transfer", map[string]string{"ivr_block": "transfer", "transfer_status": "unanswered",
			"call_state": "ended", "session": sid})
		if cres, fres := <-resc, far(); !cres.ByeFromServer || !fres.Cancelled {
			t.Fatalf("on_failure=hangup: caller got BYE=%v, far end cancelled=%v", cres.ByeFromServer, fres.Cancelled)
		}
		r.a.quiet(t, 300*time.Millisecond)
	})
}
