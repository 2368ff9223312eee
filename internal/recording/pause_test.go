package recording

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

func TestApplyPauses(t *testing.T) {
	seq := func(n, ch int) []int16 { // frame k holds k+1 on every channel
		out := make([]int16, n*ch)
		for i := range out {
			out[i] = int16(i/ch + 1)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		ch    int
		parts []pausedPart
		want  []int16
	}{
		{"none", 1, nil, []int16{1, 2, 3, 4, 5, 6}},
		{"silence", 1, []pausedPart{{1, 3, false}}, []int16{1, 0, 0, 4, 5, 6}},
		{"skip", 1, []pausedPart{{1, 3, true}}, []int16{1, 4, 5, 6}},
		{"skip all", 1, []pausedPart{{0, 6, true}}, []int16{}},
		{"skip then silence", 1, []pausedPart{{0, 2, true}, {3, 5, false}}, []int16{3, 0, 0, 6}},
		{"silence then skip", 1, []pausedPart{{0, 1, false}, {2, 4, true}, {5, 6, true}}, []int16{0, 2, 5}},
		{"stereo skip", 2, []pausedPart{{1, 2, true}}, []int16{1, 1, 3, 3, 4, 4, 5, 5, 6, 6}},
		{"stereo silence at the end", 2, []pausedPart{{4, 6, false}}, []int16{1, 1, 2, 2, 3, 3, 4, 4, 0, 0, 0, 0}},
	} {
		if got := applyPauses(seq(6, tc.ch), tc.ch, tc.parts); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRecordingDual: a dual recording keeps the directions apart: the caller (1 kHz, 0.5–2.5 s)
// on the left only, what was sent (2 kHz, 1–2 s) on the right only, each at full level and at
// its time, as ffmpeg decodes the file in stereo.
func TestRecordingDual(t *testing.T) {
	r := manualRecorder(t)
	start := time.Now()
	rec, err := r.Start("dual", start, Dual)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Channels() != Dual {
		t.Fatalf("Channels %d", rec.Channels())
	}
	ps := append(frames(false, 1000, 500*ms, 2*time.Second), frames(true, 2000, time.Second, time.Second)...)
	res := simulate(t, r, rec, start, ps, 3*time.Second)
	if res.Channels != Dual || !near(res.Duration, 3*time.Second, 80*ms) {
		t.Fatalf("result %+v", res)
	}
	mp3, _ := os.ReadFile(res.Path)
	left, right := stereo(t, mp3)
	checkSpans(t, left, 1000, audio.Span{Start: 500 * ms, End: 2500 * ms}, 60*ms)
	checkSpans(t, right, 2000, audio.Span{Start: time.Second, End: 2 * time.Second}, 60*ms)
	if s := audio.ToneSpans(left, audio.Rate, 2000, 20*ms, 0.2); len(s) != 0 {
		t.Errorf("2 kHz on the left at %v", s)
	}
	if s := audio.ToneSpans(right, audio.Rate, 1000, 20*ms, 0.2); len(s) != 0 {
		t.Errorf("1 kHz on the right at %v", s)
	}
	// Not a mix: each channel carries its tone at full level (9000 peak: RMS ≈ 6364).
	for name, pcm := range map[string][]int16{"left": segment(left, 1100*ms, 1900*ms), "right": segment(right, 1100*ms, 1900*ms)} {
		if rms := audio.RMS(pcm); rms < 5500 || rms > 7200 {
			t.Errorf("%s RMS %.0f, want ≈ 6364", name, rms)
		}
	}
	checkSilent(t, right, 0, 950*ms)
	checkSilent(t, right, 2080*ms, 3*time.Second)
}

// TestPauseStates: Pause and Resume say whether they changed anything; a paused recording
// stays paused (with its first behaviour) until Resume; a finished one takes neither.
func TestPauseStates(t *testing.T) {
	r := manualRecorder(t)
	start := time.Now()
	rec, err := r.Start("states", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		do   func() bool
		want bool
	}{
		{func() bool { return rec.Resume(start) }, false},
		{func() bool { return rec.Pause(start.Add(time.Second), true) }, true},
		{func() bool { return rec.Pause(start.Add(2*time.Second), false) }, false},
		{func() bool { return rec.Paused() }, true},
		{func() bool { return rec.Resume(start.Add(3 * time.Second)) }, true},
		{func() bool { return rec.Resume(start.Add(4 * time.Second)) }, false},
		{func() bool { return rec.Paused() }, false},
	}
	for i, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("step %d: %v, want %v", i, got, s.want)
		}
	}
	if len(rec.pauses) != 1 || !rec.pauses[0].skip || rec.pauses[0].from != int64(audio.Samples(time.Second)) ||
		rec.pauses[0].to != int64(audio.Samples(3*time.Second)) {
		t.Fatalf("pauses %+v", rec.pauses)
	}
	if _, err := rec.Finish(start.Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if rec.Pause(start.Add(6*time.Second), false) || rec.Paused() {
		t.Fatal("a finished recording paused")
	}
}

// TestPauseInTheFile: the caller talks (1 kHz) from 0 to 4 s and a prompt (2 kHz) plays from
// 0.5 to 3.5 s; the recording is paused from 1.5 to 2.5 s. With silence the paused second is
// silent and the file keeps the call's 4 s; with skip it is not in the file, which is a
// second shorter and goes on at 1.5 s with what came at 2.5 s. Audio that arrives late for a
// paused time is not taken either. Mono and dual alike.
func TestPauseInTheFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		channels int
		skip     bool
	}{
		{"mono silence", Mono, false},
		{"mono skip", Mono, true},
		{"dual silence", Dual, false},
		{"dual skip", Dual, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := manualRecorder(t)
			start := time.Now()
			rec, err := r.Start("p", start, tc.channels)
			if err != nil {
				t.Fatal(err)
			}
			ps := append(frames(false, 1000, 0, 4*time.Second), frames(true, 2000, 500*ms, 3*time.Second)...)
			// Packets for 1.5–1.9 s held up until 2.0 s: late, and still paused.
			for i := range ps {
				if !ps[i].out && ps[i].at >= 1500*ms && ps[i].at < 1900*ms {
					ps[i].deliver = 2 * time.Second
				}
			}
			ps = append(ps, packet{at: 1500 * ms, deliver: 1500 * ms}, packet{at: 2500 * ms, deliver: 2500 * ms})
			// Run the call, pausing and resuming on time (an empty packet marks each moment).
			sortPackets(ps)
			tick := r.interval
			for _, p := range ps {
				for ; tick <= p.when(); tick += r.interval {
					rec.mixTo(rec.pos(start.Add(tick - r.lag)))
				}
				switch {
				case len(p.pcm) == 0 && p.at == 1500*ms:
					rec.Pause(start.Add(p.at), tc.skip)
				case len(p.pcm) == 0:
					rec.Resume(start.Add(p.at))
				case p.out:
					rec.Outbound(p.pcm, start.Add(p.at))
				default:
					rec.Inbound(p.pcm, start.Add(p.at))
				}
			}
			res, err := rec.Finish(start.Add(4 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if res.Channels != tc.channels {
				t.Fatalf("Result.Channels %d", res.Channels)
			}
			wantLen := 4 * time.Second
			if tc.skip {
				wantLen = 3 * time.Second
			}
			if !near(res.Duration, wantLen, 80*ms) {
				t.Fatalf("file plays %v, want %v", res.Duration, wantLen)
			}
			mp3, _ := os.ReadFile(res.Path)
			var caller, prompt []int16 // the channel each is in
			if tc.channels == Dual {
				caller, prompt = stereo(t, mp3)
			} else {
				caller = decodeAll(t, res.Path)["ffmpeg"]
				prompt = caller
			}
			if !near(audio.Duration(len(caller)), wantLen, 80*ms) {
				t.Fatalf("decodes to %v, want %v", audio.Duration(len(caller)), wantLen)
			}
			threshold := 0.5
			if tc.channels == Mono {
				threshold = 0.3 // two tones share the mix
			}
			spans := func(pcm []int16, freq float64) []audio.Span {
				return audio.ToneSpans(pcm, audio.Rate, freq, 20*ms, threshold)
			}
			c, p := spans(caller, 1000), spans(prompt, 2000)
			if tc.skip {
				// One run each: what came after the pause follows what came before it.
				if len(c) != 1 || !near(c[0].Start, 0, 200*ms) || !near(c[0].End, 3*time.Second, 80*ms) {
					t.Errorf("caller at %v, want 0–3 s unbroken", c)
				}
				if len(p) != 1 || !near(p[0].Start, 500*ms, 80*ms) || !near(p[0].End, 2500*ms, 80*ms) {
					t.Errorf("prompt at %v, want 0.5–2.5 s unbroken", p)
				}
			} else {
				if len(c) != 2 || !near(c[0].End, 1500*ms, 80*ms) || !near(c[1].Start, 2500*ms, 80*ms) || !near(c[1].End, 4*time.Second, 80*ms) {
					t.Errorf("caller at %v, want 0–1.5 s and 2.5–4 s", c)
				}
				if len(p) != 2 || !near(p[0].Start, 500*ms, 80*ms) || !near(p[0].End, 1500*ms, 80*ms) ||
					!near(p[1].Start, 2500*ms, 80*ms) || !near(p[1].End, 3500*ms, 80*ms) {
					t.Errorf("prompt at %v, want 0.5–1.5 s and 2.5–3.5 s", p)
				}
				checkSilent(t, caller, 1580*ms, 2420*ms)
				checkSilent(t, prompt, 1580*ms, 2420*ms)
			}
			if tc.channels == Dual { // and the channels stayed apart
				if s := spans(caller, 2000); len(s) != 0 {
					t.Errorf("prompt in the caller's channel at %v", s)
				}
				if s := spans(prompt, 1000); len(s) != 0 {
					t.Errorf("caller in the prompt's channel at %v", s)
				}
			}
		})
	}
}

// TestPausedAtTheEnd: a recording finished while paused ends in silence (the call's length)
// or, with skip, where the pause began.
func TestPausedAtTheEnd(t *testing.T) {
	for _, skip := range []bool{false, true} {
		r := manualRecorder(t)
		start := time.Now()
		rec, err := r.Start("end", start, Mono)
		if err != nil {
			t.Fatal(err)
		}
		feed(r, rec, start, frames(false, 1000, 0, time.Second), 500*ms)
		rec.Pause(start.Add(time.Second), skip)
		feed(r, rec, start, frames(false, 1000, time.Second, 2*time.Second), 3*time.Second)
		res, err := rec.Finish(start.Add(3 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		want := 3 * time.Second
		if skip {
			want = time.Second
		}
		pcm := decodeAll(t, res.Path)["ffmpeg"]
		if !near(res.Duration, want, 80*ms) || !near(audio.Duration(len(pcm)), want, 80*ms) {
			t.Errorf("skip=%v: %v (decoded %v), want %v", skip, res.Duration, audio.Duration(len(pcm)), want)
		}
		checkSpans(t, pcm, 1000, audio.Span{Start: 0, End: time.Second}, 150*ms)
	}
}

// TestPausedWhenKilled: what a crash leaves of a paused recording (the .part as it is on disk,
// cut by Recover) holds none of the paused audio.
func TestPausedWhenKilled(t *testing.T) {
	r := manualRecorder(t)
	start := time.Now()
	rec, err := r.Start("killed", start, Dual)
	if err != nil {
		t.Fatal(err)
	}
	feed(r, rec, start, frames(false, 1000, 0, time.Second), time.Second)
	rec.Pause(start.Add(time.Second), false)
	feed(r, rec, start, frames(false, 1000, time.Second, 3*time.Second), 4*time.Second)
	// The encoding threads write what the mixer handed them; then the process dies.
	deadline := time.Now().Add(5 * time.Second)
	want := int64(3 * 32000 * 2 / 8) // 3 s of 64 kbit/s, about
	var part []byte
	for time.Now().Before(deadline) {
		part, _ = os.ReadFile(rec.PartPath())
		if int64(len(part)) >= want*9/10 {
			break
		}
		time.Sleep(20 * ms)
	}
	left := filepath.Join(t.TempDir(), "left"+PartSuffix)
	if err := os.WriteFile(left, part, 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := Recover(left)
	if err != nil {
		t.Fatal(err)
	}
	if res.Channels != Dual || res.Duration < 2500*ms {
		t.Fatalf("recovered %d channels, %v", res.Channels, res.Duration)
	}
	mp3, _ := os.ReadFile(res.Path)
	caller, _ := stereo(t, mp3)
	checkSpans(t, caller, 1000, audio.Span{Start: 0, End: time.Second}, 150*ms)
	checkSilent(t, caller, 1080*ms, audio.Duration(len(caller)))
	if _, err := rec.Finish(start.Add(4 * time.Second)); err != nil {
		t.Fatal(err)
	}
}
