package e2e

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// TestBlocksHold: Hold without msg plays hold music until Unhold; meanwhile other blocks are
// refused; Unhold notifies and the call goes on.
func TestBlocksHold(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	resc := r.callIn(ctx, callerNum, nil, 0)
	sid := r.answered(callerNum)

	if st := r.a.call("middle/unhold", url.Values{"session": {sid}, "notify_url": {r.a.url("/unhold")}}); st != "error_session_not_on_hold" {
		t.Fatalf("unhold before hold: %s", st)
	}
	tHold := time.Now()
	r.do("middle/hold", "success_ok", url.Values{"session": {sid}})
	time.Sleep(time.Second)
	for path, p := range map[string]url.Values{
		"middle/play":    {"session": {sid}, "msg": {"Hello."}, "notify_url": {r.a.url("/play")}},
		"middle/gather":  {"session": {sid}, "notify_url": {r.a.url("/gather")}},
		"middle/hold":    {"session": {sid}},
		"end/transfer":   {"session": {sid}, "dest": {"room:"}},
		"middle/monitor": {"session": {sid}, "notify_url": {r.a.url("/monitor")}},
	} {
		if st := r.a.call(path, p); st != "error_session_not_ready" {
			t.Fatalf("%s during hold: %s, want error_session_not_ready", path, st)
		}
	}
	time.Sleep(time.Second)
	tUnhold := time.Now()
	r.do("middle/unhold", "success_ok", url.Values{"session": {sid}, "tag": {"back"}, "notify_url": {r.a.url("/unhold")}})
	un := r.a.next(10 * time.Second)
	expect(t, un, "/unhold", map[string]string{"ivr_block": "unhold", "call_state": "ongoing", "session": sid, "tag": "back"})
	if d := un.at.Sub(tUnhold); d > time.Second {
		t.Fatalf("unhold notified %v after the request", d)
	}
	time.Sleep(500 * time.Millisecond) // a gap between the hold music and the play
	tPlay := time.Now()
	r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"Thank you for holding."}, "notify_url": {r.a.url("/play")}})
	expect(t, r.a.next(10*time.Second), "/play", map[string]string{"ivr_block": "play", "call_state": "ongoing"})

	// Held again, on a looped msg this time, then a forced Hangup: its notification is the
	// only one (Hold has none, the Play before it was notified already).
	tHold2 := time.Now()
	r.do("middle/hold", "success_ok", url.Values{"session": {sid}, "msg": {"Please hold."}})
	time.Sleep(2500 * time.Millisecond)
	tForce := time.Now()
	r.do("end/hangup", "success_ok", url.Values{"session": {sid}, "force": {"enabled"}, "msg": {"ignored"}, "notify_url": {r.a.url("/hangup")}})
	expect(t, r.a.next(10*time.Second), "/hangup", map[string]string{"ivr_block": "hangup", "call_state": "ended", "session": sid})
	r.a.quiet(t, 500*time.Millisecond)
	res := <-resc
	if !res.ByeFromServer {
		t.Fatal("forced hangup during hold: no BYE")
	}

	// Hold music for the whole hold, in every half second; then silence until the play.
	held := tUnhold.Sub(res.HeardAt)
	if !near(held, tUnhold.Sub(tHold), 300*time.Millisecond) {
		t.Fatalf("first audio %v after the hold request", res.HeardAt.Sub(tHold))
	}
	for at := time.Duration(0); at+500*time.Millisecond <= held; at += 500 * time.Millisecond {
		if rms := rmsBetween(res.Heard, at, at+500*time.Millisecond); rms < 200 {
			t.Fatalf("hold music silent %v–%v into the hold (RMS %.0f)", at, at+500*time.Millisecond, rms)
		}
	}
	gapFrom, gapTo := un.at.Sub(res.HeardAt)+100*time.Millisecond, tPlay.Sub(res.HeardAt)
	if rms := rmsBetween(res.Heard, gapFrom, gapTo); rms > 50 {
		t.Fatalf("hold music still playing after unhold: RMS %.0f", rms)
	}
	play := heardFrom(res, tPlay)
	if rms := audio.RMS(play); rms < 300 {
		t.Fatalf("play after unhold not heard: RMS %.0f", rms)
	}
	// The hold msg loops: heard more than once in 2.5 s, up to the forced hangup.
	loops := bursts(res.Heard[audio.Samples(tHold2.Sub(res.HeardAt)):], 300, 300*time.Millisecond)
	if len(loops) < 2 {
		t.Fatalf("hold msg heard as %v: want it looped", loops)
	}
	t.Logf("hold: music for %v (RMS %.0f), silence after unhold (RMS %.0f), then the play (RMS %.0f); hold msg heard %d times %v before the forced hangup at %v",
		held.Round(time.Millisecond), rmsBetween(res.Heard, 0, held), rmsBetween(res.Heard, gapFrom, gapTo), audio.RMS(play),
		len(loops), loops, tForce.Sub(tHold2).Round(time.Millisecond))

	// The caller hangs up while held: Hold has no notification of its own, so the app gets the
	// last one again, with call_state=ended.
	resc = r.callIn(ctx, callerNum, nil, 2*time.Second)
	sid = r.answered(callerNum)
	r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"Hi."}, "tag": {"p"}, "notify_url": {r.a.url("/play")}})
	expect(t, r.a.next(10*time.Second), "/play", map[string]string{"ivr_block": "play", "call_state": "ongoing", "session": sid})
	r.do("middle/hold", "success_ok", url.Values{"session": {sid}})
	expect(t, r.a.next(10*time.Second), "/play", map[string]string{"ivr_block": "play", "call_state": "ended", "session": sid, "tag": "p", "duration": "1"})
	r.a.quiet(t, 300*time.Millisecond)
	if res := <-resc; res.ByeFromServer {
		t.Fatal("the caller hung up, yet ivrd sent BYE")
	}
}
