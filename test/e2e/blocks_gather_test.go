package e2e

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

const gatherPrompt = "Enter your code."

// TestBlocksGather: Gather collects keys from two different SIP stacks (sipp replaying RFC 4733
// pcaps whose events start with duration 0, and baresip's own RFC 4733 sender), stops at '#'
// and at max_digits without waiting for the timeout, and repeats its prompt per attempt when
// no key comes.
func TestBlocksGather(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	t.Run("sipp 15#", func(t *testing.T) {
		r.sub(t)
		// Keys start during the prompt: the first one stops it.
		resc := r.callIn(ctx, callerNum, append([]testpeer.Step{testpeer.Pause(600 * time.Millisecond)}, testpeer.SendDTMFs("15#")...), 0)
		sid := r.answered(callerNum)
		tReq := time.Now()
		r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "msg": {gatherPrompt}, "timeout": {"5"}, "tag": {"g1"},
			"notify_url": {r.a.url("/gather")}})
		n := r.a.next(10 * time.Second)
		expect(t, n, "/gather", map[string]string{"ivr_block": "gather", "digits": "15", "call_state": "ongoing", "session": sid, "tag": "g1"})
		// '#' ends it: the three keys take 1.5 s after the 0.6 s pause, far short of the 5 s timeout.
		if took := n.at.Sub(tReq); took > 3*time.Second {
			t.Fatalf("gather took %v: '#' did not end it", took)
		}
		r.hangup(sid)
		res := <-resc
		if !res.ByeFromServer {
			t.Fatalf("sipp: bye=%v", res.ByeFromServer)
		}
		// The first key (0.6 s in) cut the 1 s prompt short.
		heard := bursts(res.Heard, 300, 400*time.Millisecond)
		if len(heard) != 1 || heard[0].End > 850*time.Millisecond {
			t.Fatalf("prompt heard as %v: want one stretch cut by the first key at 0.6 s", heard)
		}
		t.Logf("sipp (RFC 4733 pcaps): digits=15, notified %v after the request; prompt heard %v (cut by the first key)",
			n.at.Sub(tReq).Round(time.Millisecond), heard[0])
	})

	t.Run("baresip max_digits", func(t *testing.T) {
		r.sub(t)
		b := startBaresip(t, r.p.sip, callerNum2)
		sid := r.answered(callerNum2)
		tReq := time.Now()
		r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "max_digits": {"2"}, "timeout": {"10"},
			"notify_url": {r.a.url("/gather")}})
		// Wait until baresip has the call established (it answers the 200 with ACK).
		b.waitLog("Call established", 5*time.Second)
		tKeys := time.Now()
		for _, k := range "428" {
			b.key(k)
			time.Sleep(300 * time.Millisecond)
		}
		n := r.a.next(10 * time.Second)
		expect(t, n, "/gather", map[string]string{"ivr_block": "gather", "digits": "42", "call_state": "ongoing", "session": sid})
		// max_digits=2 ends it at the second key, not at the 10 s timeout.
		if took := n.at.Sub(tKeys); took > 2*time.Second {
			t.Fatalf("gather ended %v after the first key: max_digits did not end it", took)
		}
		if !b.logHas("send DTMF digit: '4'") || !b.logHas("send DTMF digit: '2'") {
			t.Fatal("baresip did not send the keys as DTMF events")
		}
		r.hangup(sid)
		t.Logf("baresip (RFC 4733): keys 4,2,8 with max_digits=2 gave digits=42, %v after the first key (request to notification %v)",
			n.at.Sub(tKeys).Round(time.Millisecond), n.at.Sub(tReq).Round(time.Millisecond))
	})

	t.Run("timeout and attempts", func(t *testing.T) {
		r.sub(t)
		resc := r.callIn(ctx, callerNum, nil, 0)
		sid := r.answered(callerNum)

		tOne := time.Now()
		r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "msg": {gatherPrompt}, "timeout": {"1"}, "notify_url": {r.a.url("/gather")}})
		one := r.a.next(10 * time.Second)
		expect(t, one, "/gather", map[string]string{"ivr_block": "gather", "digits": "", "call_state": "ongoing"})
		oneTook := one.at.Sub(tOne)

		tTwo := time.Now()
		r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "msg": {gatherPrompt}, "timeout": {"1"}, "attempts": {"2"},
			"notify_url": {r.a.url("/gather")}})
		two := r.a.next(15 * time.Second)
		expect(t, two, "/gather", map[string]string{"ivr_block": "gather", "digits": "", "call_state": "ongoing"})
		twoTook := two.at.Sub(tTwo)
		r.hangup(sid)
		res := <-resc

		// What the caller heard before and after the second request (100 ms of slack for the
		// RTP timeline; the first gather's timeout is silent there).
		cut := max(0, min(len(res.Heard), audio.Samples(tTwo.Sub(res.HeardAt)-100*time.Millisecond)))
		prompts1 := bursts(res.Heard[:cut], 300, 400*time.Millisecond)
		prompts2 := bursts(res.Heard[cut:], 300, 400*time.Millisecond)
		if len(prompts1) != 1 || len(prompts2) != 2 {
			t.Fatalf("prompt heard %d times for attempts=1 (%v) and %d times for attempts=2 (%v)", len(prompts1), prompts1, len(prompts2), prompts2)
		}
		// An attempt is the prompt (with the synthesiser's trailing silence) and then the 1 s
		// timeout: the second prompt starts one attempt after the first.
		attempt := prompts2[1].Start - prompts2[0].Start
		if gap := prompts2[1].Start - prompts2[0].End; gap < time.Second || gap > 1600*time.Millisecond {
			t.Fatalf("between the two prompts %v of silence, want the 1 s timeout (and the prompt's trailing silence)", gap)
		}
		// (The request-to-notification times add preparing the msg and delivering the notification.)
		if oneTook < attempt-100*time.Millisecond || oneTook > attempt+500*time.Millisecond ||
			twoTook < 2*attempt-100*time.Millisecond || twoTook > 2*attempt+500*time.Millisecond {
			t.Fatalf("attempts=1 took %v, attempts=2 %v; one attempt (prompt + 1 s) is %v", oneTook, twoTook, attempt)
		}
		t.Logf("no keys: attempts=1 → digits empty after %v; attempts=2 → prompt heard twice (%v and %v, %v apart), digits empty after %v",
			oneTook.Round(time.Millisecond), prompts2[0], prompts2[1], attempt, twoTook.Round(time.Millisecond))
	})

	t.Run("caller hangs up", func(t *testing.T) {
		r.sub(t)
		// One key as SIP INFO, one as RFC 4733, then the caller hangs up mid-gather.
		resc := r.callIn(ctx, callerNum, []testpeer.Step{testpeer.Pause(300 * time.Millisecond), testpeer.SendInfoDTMF('3'), testpeer.SendDTMF('4')}, 1500*time.Millisecond)
		sid := r.answered(callerNum)
		r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "timeout": {"5"}, "notify_url": {r.a.url("/gather")}})
		n := r.a.next(10 * time.Second)
		expect(t, n, "/gather", map[string]string{"ivr_block": "gather", "digits": "34", "call_state": "ended", "session": sid, "duration": "1"})
		res := <-resc
		if d := n.at.Sub(res.ByeAt); d < -100*time.Millisecond || d > time.Second { // sipp logs its BYE after sending it
			t.Fatalf("gather notified %v after the caller's BYE", d)
		}
		r.a.quiet(t, 300*time.Millisecond)
	})
}
