package e2e

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestBlocksRecord: Record captures the caller (a 1 kHz tone from sipp) into an MP3 behind a
// signed record_url: when the caller hangs up mid-recording the notification still comes
// (call_state=ended) with the partial recording, and '#' ends a recording at once.
func TestBlocksRecord(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	tone := audio.SineWave(1000, 1500*time.Millisecond, 12000)

	t.Run("caller hangs up", func(t *testing.T) {
		r.sub(t)
		// No msg: the beep (0.3 s) starts the recording. The tone runs 1–2.5 s after the
		// answer, the caller hangs up at 3 s.
		resc := r.callIn(ctx, callerNum, []testpeer.Step{testpeer.Pause(time.Second), testpeer.SendAudio(tone)}, 3*time.Second)
		sid := r.answered(callerNum)
		r.do("middle/record", "success_ok", url.Values{"session": {sid}, "max_duration": {"30"}, "tag": {"r1"}, "notify_url": {r.a.url("/record?x=1")}})
		n := r.a.next(10 * time.Second)
		expect(t, n, "/record", map[string]string{"ivr_block": "record", "call_state": "ended", "session": sid, "tag": "r1", "x": "1",
			"record_url": "*", "duration": "1", "date": "*"})
		res := <-resc
		if !res.Answered || res.ByeFromServer {
			t.Fatalf("sipp: answered=%v bye from ivrd=%v", res.Answered, res.ByeFromServer)
		}
		// The caller heard the 0.3 s beep that starts the recording.
		beeps := audio.ToneSpans(res.Heard, audio.Rate, 1000, 20*time.Millisecond, 0.5)
		if len(beeps) != 1 || !near(beeps[0].Len(), 300*time.Millisecond, 60*time.Millisecond) {
			t.Fatalf("beep heard as %v", beeps)
		}
		pcm := recording(t, n.params.Get("record_url"))
		length, want := audio.Duration(len(pcm)), 2700*time.Millisecond // 3 s call less the beep
		spans := audio.ToneSpans(pcm, audio.Rate, 1000, 40*time.Millisecond, 0.5)
		if !near(length, want, 400*time.Millisecond) {
			t.Fatalf("recording is %v, want about %v (answer to hang-up, less the beep)", length, want)
		}
		if len(spans) != 1 || !near(spans[0].Start, 700*time.Millisecond, 300*time.Millisecond) || !near(spans[0].Len(), 1500*time.Millisecond, 150*time.Millisecond) {
			t.Fatalf("1 kHz in the recording: %v, want one 1.5 s span at about 0.7 s", spans)
		}
		if rest := rmsBetween(pcm, spans[0].End+100*time.Millisecond, length); rest > 100 {
			t.Fatalf("after the tone the caller was silent, the recording has RMS %.0f", rest)
		}
		t.Logf("hang-up mid-record: ended notification %v after the caller's BYE; MP3 %v with the 1 kHz tone at %v for %v",
			n.at.Sub(res.ByeAt).Round(time.Millisecond), length, spans[0].Start, spans[0].Len())
	})

	t.Run("hash ends it", func(t *testing.T) {
		r.sub(t)
		resc := r.callIn(ctx, callerNum, []testpeer.Step{testpeer.Pause(time.Second), testpeer.SendAudio(tone),
			testpeer.Pause(300 * time.Millisecond), testpeer.SendDTMF('#')}, 0)
		sid := r.answered(callerNum)
		tReq := time.Now()
		r.do("middle/record", "success_ok", url.Values{"session": {sid}, "max_duration": {"20"}, "notify_url": {r.a.url("/record")}})
		n := r.a.next(10 * time.Second)
		expect(t, n, "/record", map[string]string{"ivr_block": "record", "call_state": "ongoing", "session": sid, "record_url": "*"})
		if took := n.at.Sub(tReq); took > 4*time.Second {
			t.Fatalf("record notified %v after the request: '#' (at 2.8 s) did not end it", took)
		}
		// The session goes on.
		r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"Thank you."}, "notify_url": {r.a.url("/play")}})
		expect(t, r.a.next(10*time.Second), "/play", map[string]string{"ivr_block": "play", "call_state": "ongoing"})
		r.hangup(sid)
		<-resc

		pcm := recording(t, n.params.Get("record_url"))
		length := audio.Duration(len(pcm))
		spans := audio.ToneSpans(pcm, audio.Rate, 1000, 40*time.Millisecond, 0.5)
		// Recording from the beep's end (0.3 s) to '#' (2.8 s).
		if !near(length, 2500*time.Millisecond, 400*time.Millisecond) {
			t.Fatalf("recording is %v, want about 2.5 s (beep to '#')", length)
		}
		if len(spans) != 1 || !near(spans[0].Len(), 1500*time.Millisecond, 150*time.Millisecond) {
			t.Fatalf("1 kHz in the recording: %v, want one 1.5 s span", spans)
		}
		// The '#' went as a telephone-event, never as audio: silence after the tone.
		if rest := rmsBetween(pcm, spans[0].End+100*time.Millisecond, length); rest > 100 {
			t.Fatalf("after the tone the recording has RMS %.0f", rest)
		}
		t.Logf("'#' ended the recording: notified %v after the request; MP3 %v with the tone at %v for %v",
			n.at.Sub(tReq).Round(time.Millisecond), length, spans[0].Start, spans[0].Len())
	})
}

// recording downloads an MP3 by its signed URL and decodes it.
func recording(t *testing.T, u string) []int16 {
	t.Helper()
	code, mp3 := download(t, u)
	if code != 200 || len(mp3) < 500 {
		t.Fatalf("download %s: HTTP %d, %d bytes", u, code, len(mp3))
	}
	return decodeMP3(t, mp3)
}
