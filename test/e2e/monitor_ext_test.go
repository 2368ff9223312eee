package e2e

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/audio/audiotest"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// stereoRecording downloads a dual recording and decodes it with ffmpeg as stereo.
func stereoRecording(t *testing.T, u string) (left, right []int16) {
	t.Helper()
	code, mp3 := download(t, u)
	if code != 200 || len(mp3) < 1000 {
		t.Fatalf("download %s: HTTP %d, %d bytes", u, code, len(mp3))
	}
	return audiotest.Stereo(t, mp3)
}

// noTone fails if freq is in pcm at all.
func noTone(t *testing.T, pcm []int16, freq float64, what string) {
	t.Helper()
	if spans := audio.ToneSpans(pcm, audio.Rate, freq, 40*time.Millisecond, 0.5); len(spans) != 0 {
		t.Fatalf("%s: %v Hz at %v, want none", what, freq, spans)
	}
}

// TestMonitorDualChannel: Monitor with channels=dual records a stereo MP3 with the caller on
// the left and everything ivrd sends on the right, each on the call's timeline.
func TestMonitorDualChannel(t *testing.T) {
	t.Run("prompts right, caller left", func(t *testing.T) {
		r := newRig(t)
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		// The caller sends 1 kHz 4–5 s after the answer; a Play runs before that.
		resc := r.callIn(ctx, callerNum, []testpeer.Step{testpeer.Pause(4 * time.Second), testpeer.SendAudio(audio.SineWave(1000, time.Second, 12000))}, 0)
		sid := r.answered(callerNum)
		tAns := time.Now()
		r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "channels": {"dual"}, "notify_url": {r.a.url("/monitor")}})
		mon := r.a.next(10 * time.Second)
		expect(t, mon, "/monitor", map[string]string{"call_state": "ongoing"})
		tRec := mon.at
		r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"Please hold while we check your order."}, "notify_url": {r.a.url("/play")}})
		play := r.a.next(10 * time.Second)
		expect(t, play, "/play", map[string]string{"call_state": "ongoing"})
		time.Sleep(time.Until(tAns.Add(6 * time.Second)))
		hang := r.hangup(sid)
		final := r.a.next(10 * time.Second)
		expect(t, final, "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*"})
		<-resc

		left, right := stereoRecording(t, final.params.Get("monitor_url"))
		if length, want := audio.Duration(len(left)), hang.at.Sub(tRec); !near(length, want, 500*time.Millisecond) {
			t.Fatalf("recording is %v, the monitored call %v", length, want)
		}
		one := oneSecondTone(t, left, 1000, tAns.Add(4*time.Second).Sub(tRec), "caller's 1 kHz on the left")
		noTone(t, right, 1000, "right channel")
		playLen := play.at.Sub(tRec)
		if rms := rmsBetween(right, 100*time.Millisecond, playLen-100*time.Millisecond); rms < 300 {
			t.Fatalf("the prompt is not on the right: RMS %.0f over 0–%v", rms, playLen)
		}
		if rms := rmsBetween(left, 100*time.Millisecond, playLen-100*time.Millisecond); rms > 100 {
			t.Fatalf("the prompt leaks into the left: RMS %.0f over 0–%v", rms, playLen)
		}
		if rms := rmsBetween(right, one.Start+100*time.Millisecond, one.End-100*time.Millisecond); rms > 100 {
			t.Fatalf("the right is not silent while the caller speaks: RMS %.0f", rms)
		}
		t.Logf("dual MP3 %v: caller's 1 kHz on the left at %v for %v; prompt on the right over 0–%v (RMS %.0f), left there RMS %.0f",
			audio.Duration(len(left)), one.Start, one.Len(), playLen.Round(time.Millisecond),
			rmsBetween(right, 100*time.Millisecond, playLen-100*time.Millisecond), rmsBetween(left, 100*time.Millisecond, playLen-100*time.Millisecond))
	})

	t.Run("transfer: far party right", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		r, sid, resc, far := twoTones(ctx, t)
		r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "channels": {"dual"}, "notify_url": {r.a.url("/monitor")}})
		mon := r.a.next(10 * time.Second)
		r.do("end/transfer", "success_ok", url.Values{"session": {sid}, "dest": {farNumber}, "notify_url": {r.a.url("/transfer")}})
		notes := r.a.nextTwo(15 * time.Second)
		expect(t, notes["/transfer"], "/transfer", map[string]string{"transfer_status": "answered", "call_state": "ended"})
		final := notes["/monitor"]
		expect(t, final, "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*"})
		fres, cres := far(), <-resc

		left, right := stereoRecording(t, final.params.Get("monitor_url"))
		wantOne := cres.AnsweredAt.Add(1500 * time.Millisecond).Sub(mon.at)
		wantTwo := fres.AnsweredAt.Add(3 * time.Second).Sub(mon.at)
		one := oneSecondTone(t, left, 1000, wantOne, "caller's 1 kHz on the left")
		two := oneSecondTone(t, right, 2000, wantTwo, "far party's 2 kHz on the right")
		noTone(t, left, 2000, "left channel")
		noTone(t, right, 1000, "right channel")
		t.Logf("dual MP3 %v: 1 kHz left at %v (want %v), 2 kHz right at %v (want %v)", audio.Duration(len(left)),
			one.Start, wantOne.Round(time.Millisecond), two.Start, wantTwo.Round(time.Millisecond))
	})
}

// TestMonitorPause: monitor/pause and monitor/resume on a real call, measured in the MP3. The
// caller sends 1 kHz 1–6 s after the answer; a Gather runs (silently, for card digits) while
// the app pauses at 2.5 s, which is taken at once, and resumes at 4.5 s. With silence the
// paused part is silent and the file keeps the call's length; with skip the file is shorter by
// the pause and the tone after the resume follows the tone before it without a break.
func TestMonitorPause(t *testing.T) {
	for _, behavior := range []string{"silence", "skip"} {
		t.Run(behavior, func(t *testing.T) {
			r := newRig(t)
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			resc := r.callIn(ctx, callerNum, []testpeer.Step{testpeer.Pause(time.Second), testpeer.SendAudio(audio.SineWave(1000, 5*time.Second, 12000))}, 0)
			sid := r.answered(callerNum)
			tAns := time.Now()
			r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}})
			mon := r.a.next(10 * time.Second)
			tRec := mon.at
			r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "timeout": {"3"}, "notify_url": {r.a.url("/gather")}})

			time.Sleep(time.Until(tAns.Add(2500 * time.Millisecond)))
			r.do("middle/play", "error_session_not_ready", url.Values{"session": {sid}, "msg": {"x"}})
			tPause := time.Now()
			r.do("monitor/pause", "success_ok", url.Values{"session": {sid}, "pause_behavior": {behavior}})
			r.do("monitor/pause", "success_ok", url.Values{"session": {sid}}) // already paused: no change
			time.Sleep(time.Until(tAns.Add(4500 * time.Millisecond)))
			tResume := time.Now()
			r.do("monitor/resume", "success_ok", url.Values{"session": {sid}})
			expect(t, r.a.next(10*time.Second), "/gather", map[string]string{"call_state": "ongoing", "digits": ""})
			time.Sleep(time.Until(tAns.Add(7 * time.Second)))
			hang := r.hangup(sid)
			final := r.a.next(10 * time.Second)
			expect(t, final, "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*", "duration": "1"})
			cres := <-resc
			if !cres.Answered {
				t.Fatal("caller not answered")
			}

			pcm := recording(t, final.params.Get("monitor_url"))
			length, call, paused := audio.Duration(len(pcm)), hang.at.Sub(tRec), tResume.Sub(tPause)
			spans := audio.ToneSpans(pcm, audio.Rate, 1000, 40*time.Millisecond, 0.5)
			toneFrom := tAns.Add(time.Second).Sub(tRec)
			before := tPause.Sub(tAns.Add(time.Second)) // tone recorded before the pause
			after := tAns.Add(6 * time.Second).Sub(tResume)
			switch behavior {
			case "silence":
				if !near(length, call, 500*time.Millisecond) {
					t.Fatalf("recording is %v, the monitored call %v: a silent pause keeps the length", length, call)
				}
				if len(spans) != 2 || !near(spans[0].Start, toneFrom, 350*time.Millisecond) || !near(spans[0].End, tPause.Sub(tRec), 300*time.Millisecond) ||
					!near(spans[1].Start, tResume.Sub(tRec), 300*time.Millisecond) || !near(spans[1].End, tAns.Add(6*time.Second).Sub(tRec), 350*time.Millisecond) {
					t.Fatalf("1 kHz at %v; want it until the pause at %v and from the resume at %v", spans, tPause.Sub(tRec), tResume.Sub(tRec))
				}
				if rms := rmsBetween(pcm, spans[0].End+100*time.Millisecond, spans[1].Start-100*time.Millisecond); rms > 100 {
					t.Fatalf("the paused part is not silent: RMS %.0f", rms)
				}
			case "skip":
				if !near(length, call-paused, 500*time.Millisecond) {
					t.Fatalf("recording is %v; the call %v less the pause %v is %v", length, call, paused, call-paused)
				}
				// Where the two parts meet the tone's phase jumps, which can cost the detector
				// one 40 ms window: a run is spans less than 100 ms apart.
				run := joined(spans, 100*time.Millisecond)
				if len(run) != 1 || !near(run[0].Start, toneFrom, 350*time.Millisecond) || !near(run[0].Len(), before+after, 350*time.Millisecond) {
					t.Fatalf("1 kHz at %v; want one run from %v of %v (%v before the pause, %v after the resume)", spans, toneFrom, before+after, before, after)
				}
			}
			t.Logf("%s: MP3 %v (call %v, paused %v); 1 kHz at %v", behavior, length, call.Round(time.Millisecond), paused.Round(time.Millisecond), spans)
		})
	}
}

// joined merges spans less than gap apart.
func joined(spans []audio.Span, gap time.Duration) []audio.Span {
	var out []audio.Span
	for _, s := range spans {
		if n := len(out); n > 0 && s.Start-out[n-1].End < gap {
			out[n-1].End = s.End
			continue
		}
		out = append(out, s)
	}
	return out
}
