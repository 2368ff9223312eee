package e2e

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestBlocksDial: the Dial start block calls out through --sip-trunk to a sipp far end, which
// answers, is busy, or rings out; the app sees dial_status, and an answered call plays msg to
// the far party and is cut at max_duration.
func TestBlocksDial(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeAnswer})
		r := newRig(t, "--sip-trunk", trunk)

		tReq := time.Now()
		body := r.do("start/dial", "success_ok", url.Values{"dest": {farNumber}, "msg": {"Hello."}, "caller_id": {"+6561234567"},
			"max_duration": {"2"}, "tag": {"out-1"}, "notify_url": {r.a.url("/dial?shop=42")}})
		sid, txn := body["session"], body["txn_ref"]
		if sid == "" || txn == "" {
			t.Fatalf("dial answer lacks session or txn_ref: %v", body)
		}
		want := map[string]string{"ivr_block": "dial", "session": sid, "txn_ref": txn, "dest": farNumber, "tag": "out-1", "shop": "42"}
		n := r.a.next(10 * time.Second)
		want["dial_status"], want["call_state"] = "answered", "ongoing"
		expect(t, n, "/dial", want)
		tNoted := n.at

		// The app sends nothing more: max_duration ends the call 2 s after the answer, and the
		// app learns it from the dial notification sent again with call_state=ended.
		end := r.a.next(10 * time.Second)
		want["call_state"], want["duration"], want["date"], want["currency"] = "ended", "1", "*", "*"
		expect(t, end, "/dial", want)
		if st := r.a.call("middle/play", url.Values{"session": {sid}}); st != "error_session_ended" {
			t.Fatalf("play after the end: %s", st)
		}

		res := far()
		if !res.Answered || !res.ByeFromServer {
			t.Fatalf("far end: answered=%v bye from ivrd=%v status=%d", res.Answered, res.ByeFromServer, res.Status)
		}
		if res.RequestUser != farNumber || res.FromUser != "+6561234567" {
			t.Fatalf("far end got INVITE for %q from %q, want %q from +6561234567", res.RequestUser, res.FromUser, farNumber)
		}
		talk := res.ByeAt.Sub(res.AnsweredAt)
		if !near(talk, 2*time.Second, 300*time.Millisecond) {
			t.Fatalf("answered call lasted %v, want max_duration 2 s", talk)
		}
		rms := audio.RMS(res.Heard)
		if rms < 300 || res.Packets < 20 {
			t.Fatalf("far end heard no msg: RMS %.0f over %d packets", rms, res.Packets)
		}
		t.Logf("answered: notified %v after the request; call lasted %v (max_duration 2 s); far end heard %v of audio, RMS %.0f",
			tNoted.Sub(tReq).Round(time.Millisecond), talk.Round(time.Millisecond), audio.Duration(len(res.Heard)), rms)
	})

	t.Run("busy", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeBusy})
		r := newRig(t, "--sip-trunk", trunk)
		body := r.do("start/dial", "success_ok", url.Values{"dest": {farNumber}, "msg": {"Hello."}, "notify_url": {r.a.url("/dial")}})
		n := r.a.next(10 * time.Second)
		expect(t, n, "/dial", map[string]string{"ivr_block": "dial", "dial_status": "busy", "call_state": "ended", "dest": farNumber,
			"session": body["session"], "txn_ref": body["txn_ref"], "duration": "0", "date": "*"})
		if st := r.a.call("middle/play", url.Values{"session": {body["session"]}}); st != "error_session_ended" {
			t.Fatalf("play on a busy dial's session: %s", st)
		}
		if res := far(); res.Status != 486 || res.RequestUser != farNumber {
			t.Fatalf("far end answered %d to %q", res.Status, res.RequestUser)
		}
		r.a.quiet(t, 300*time.Millisecond)
	})

	t.Run("unanswered", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeNoAnswer})
		r := newRig(t, "--sip-trunk", trunk, "--ring-timeout", "2s")
		tReq := time.Now()
		body := r.do("start/dial", "success_ok", url.Values{"dest": {farNumber}, "notify_url": {r.a.url("/dial")}})
		n := r.a.next(10 * time.Second)
		expect(t, n, "/dial", map[string]string{"ivr_block": "dial", "dial_status": "unanswered", "call_state": "ended", "dest": farNumber,
			"session": body["session"]})
		rang := n.at.Sub(tReq)
		if !near(rang, 2*time.Second, 500*time.Millisecond) {
			t.Fatalf("unanswered after %v, want the 2 s ring timeout", rang)
		}
		if res := far(); !res.Cancelled || res.Answered {
			t.Fatalf("far end: cancelled=%v answered=%v", res.Cancelled, res.Answered)
		}
		t.Logf("unanswered: notified %v after the request (ring timeout 2 s), CANCEL reached the far end", rang.Round(time.Millisecond))
	})

	t.Run("blocks on the dialled call", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The far party presses 7 (RFC 4733), 8 (SIP INFO) and # (RFC 4733), then sends 2 kHz.
		trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeAnswer,
			Script: []testpeer.Step{testpeer.Pause(1500 * time.Millisecond), testpeer.SendDTMF('7'), testpeer.SendInfoDTMF('8'), testpeer.SendDTMF('#'),
				testpeer.Pause(700 * time.Millisecond), testpeer.SendAudio(audio.SineWave(2000, time.Second, 12000))}})
		r := newRig(t, "--sip-trunk", trunk)
		body := r.do("start/dial", "success_ok", url.Values{"dest": {farNumber}, "notify_url": {r.a.url("/dial")}})
		sid := body["session"]
		expect(t, r.a.next(10*time.Second), "/dial", map[string]string{"dial_status": "answered", "call_state": "ongoing", "session": sid})
		r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}})
		expect(t, r.a.next(10*time.Second), "/monitor", map[string]string{"call_state": "ongoing", "dest": farNumber})
		r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "timeout": {"5"}, "notify_url": {r.a.url("/gather")}})
		g := r.a.next(10 * time.Second)
		expect(t, g, "/gather", map[string]string{"ivr_block": "gather", "digits": "78", "call_state": "ongoing", "dest": farNumber, "session": sid})
		if _, ok := g.params["from"]; ok {
			t.Fatalf("a dialled call's notification carries from: %v", g.params)
		}
		r.do("middle/record", "success_ok", url.Values{"session": {sid}, "max_duration": {"2"}, "notify_url": {r.a.url("/record")}})
		rec := r.a.next(10 * time.Second)
		expect(t, rec, "/record", map[string]string{"ivr_block": "record", "call_state": "ongoing", "record_url": "*", "dest": farNumber})
		r.do("end/hangup", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/hangup")}})
		notes := r.a.nextTwo(10 * time.Second)
		expect(t, notes["/hangup"], "/hangup", map[string]string{"call_state": "ended", "dest": farNumber})
		expect(t, notes["/monitor"], "/monitor", map[string]string{"call_state": "ended", "dest": farNumber, "monitor_url": "*"})
		if res := far(); !res.ByeFromServer {
			t.Fatal("far end got no BYE")
		}
		pcm := recording(t, rec.params.Get("record_url"))
		if got := toneLen(pcm, 2000); !near(got, time.Second, 150*time.Millisecond) || !near(audio.Duration(len(pcm)), 2*time.Second, 200*time.Millisecond) {
			t.Fatalf("record of the far party: %v long, 2 kHz for %v; want 2 s (max_duration) with 1 s of tone", audio.Duration(len(pcm)), got)
		}
		// The Monitor heard the far party's tone and Record's 1 kHz beep (played to the far party).
		mon := recording(t, notes["/monitor"].params.Get("monitor_url"))
		if two, beep := toneLen(mon, 2000), toneLen(mon, 1000); !near(two, time.Second, 150*time.Millisecond) || !near(beep, 300*time.Millisecond, 100*time.Millisecond) {
			t.Fatalf("monitor of the dialled call: 2 kHz for %v, 1 kHz beep for %v", two, beep)
		}
		t.Logf("dialled call: digits=78 (RFC 4733 + INFO from the far end), record %v with 2 kHz for %v", audio.Duration(len(pcm)), toneLen(pcm, 2000))
	})

	t.Run("no notify_url", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeAnswer})
		r := newRig(t, "--sip-trunk", trunk)
		body := r.do("start/dial", "success_ok", url.Values{"dest": {farNumber}, "msg": {"Your order has shipped."}})
		res := far()
		if !res.Answered || !res.ByeFromServer {
			t.Fatalf("far end: answered=%v bye from ivrd=%v", res.Answered, res.ByeFromServer)
		}
		// The msg, then the hang-up: the call lasts as long as the msg.
		talk, heard := res.ByeAt.Sub(res.AnsweredAt), bursts(res.Heard, 300, 400*time.Millisecond)
		if len(heard) != 1 || talk < heard[0].End || talk > heard[0].End+time.Second {
			t.Fatalf("call of %v, msg heard as %v", talk, heard)
		}
		r.a.quiet(t, 300*time.Millisecond)
		if st := r.a.call("middle/play", url.Values{"session": {body["session"]}}); st != "error_session_ended" {
			t.Fatalf("play after the dial without notify_url: %s", st)
		}
		t.Logf("no notify_url: msg heard %v, BYE %v after the answer, no notification", heard[0], talk.Round(time.Millisecond))
	})
}
