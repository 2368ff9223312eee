package recording

import (
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

const ms = time.Millisecond

// packet is one Tap call of a simulated call.
type packet struct {
	out     bool // Outbound, else Inbound
	at      time.Duration
	deliver time.Duration // when the Tap is called, if later than at
	pcm     []int16
}

func (p packet) when() time.Duration { return max(p.at, p.deliver) }

// frames cuts d of a tone into 20 ms packets starting at from, one every 20 ms.
func frames(out bool, freq float64, from, d time.Duration) []packet {
	g := &tone{freq: freq, amp: 9000}
	var ps []packet
	for t := time.Duration(0); t < d; t += 20 * ms {
		ps = append(ps, packet{out: out, at: from + t, pcm: g.frame(audio.FrameSamples)})
	}
	return ps
}

// simulate plays packets into rec on a fake clock that starts at start and runs the mixer
// the way the goroutine would (every interval, up to now-lag), then finishes at end.
func simulate(t *testing.T, r *Recorder, rec *Recording, start time.Time, ps []packet, end time.Duration) Result {
	t.Helper()
	feed(r, rec, start, ps, end)
	res, err := rec.Finish(start.Add(end))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sortPackets orders packets by when they reach the recording.
func sortPackets(ps []packet) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].when() < ps[j].when() })
}

// feed is simulate without the Finish.
func feed(r *Recorder, rec *Recording, start time.Time, ps []packet, end time.Duration) {
	sortPackets(ps)
	tick := r.interval
	for _, p := range ps {
		for ; tick <= p.when(); tick += r.interval {
			rec.mixTo(rec.pos(start.Add(tick - r.lag)))
		}
		if p.out {
			rec.Outbound(p.pcm, start.Add(p.at))
		} else {
			rec.Inbound(p.pcm, start.Add(p.at))
		}
	}
	for ; tick <= end; tick += r.interval {
		rec.mixTo(rec.pos(start.Add(tick - r.lag)))
	}
}

// checkSpans asserts that freq is present exactly over want (one span, ± tol) in pcm.
func checkSpans(t *testing.T, pcm []int16, freq float64, want audio.Span, tol time.Duration) {
	t.Helper()
	checkSpansAt(t, pcm, freq, 0.5, want, tol)
}

// checkSpansAt is checkSpans with the ToneSpans threshold given.
func checkSpansAt(t *testing.T, pcm []int16, freq, threshold float64, want audio.Span, tol time.Duration) {
	t.Helper()
	spans := audio.ToneSpans(pcm, audio.Rate, freq, 20*ms, threshold)
	if len(spans) != 1 || !near(spans[0].Start, want.Start, tol) || !near(spans[0].End, want.End, tol) {
		t.Errorf("%v Hz found at %v, want one span %v ± %v", freq, spans, want, tol)
	}
}

// checkHole asserts that freq spans 0.5–1.5 s but for a hole about where want says.
func checkHole(t *testing.T, pcm []int16, freq float64, hole audio.Span) {
	t.Helper()
	spans := audio.ToneSpans(pcm, audio.Rate, freq, 20*ms, 0.5)
	if len(spans) != 2 || !near(spans[0].Start, 500*ms, 40*ms) || !near(spans[0].End, hole.Start, 40*ms) ||
		!near(spans[1].Start, hole.End, 40*ms) || !near(spans[1].End, 1500*ms, 40*ms) {
		t.Errorf("%v Hz found at %v, want 0.5–1.5 s with a hole at %v", freq, spans, hole)
	}
}

// checkSilent asserts that pcm is silent between from and to.
func checkSilent(t *testing.T, pcm []int16, from, to time.Duration) {
	t.Helper()
	if r := audio.RMS(segment(pcm, from, to)); r > 50 {
		t.Errorf("RMS %.0f between %v and %v, want silence", r, from, to)
	}
}

// TestRecordingTimeline: caller tone at 0.5–1.5 s, two seconds with no packets at all, our
// tone at 3.5–4.0 s, hang-up at 5 s. The file must keep every gap, under several arrival
// patterns of the caller's packets.
func TestRecordingTimeline(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	tests := []struct {
		name    string
		arrival func([]packet) // rewrites at of the inbound packets
	}{
		{"steady", func([]packet) {}},
		{"jitter up to 30 ms", func(ps []packet) {
			var last time.Duration
			for i := range ps {
				ps[i].at = max(last, ps[i].at+time.Duration(rng.IntN(30))*ms)
				last = ps[i].at
			}
		}},
		{"held up 140 ms, then a burst", func(ps []packet) {
			// The packets due at 0.9–1.02 s all arrive at 1.04 s.
			for i := range ps {
				if ps[i].at >= 900*ms && ps[i].at < 1040*ms {
					ps[i].at = 1040 * ms
				}
			}
		}},
		{"held up 190 ms, then a burst", func(ps []packet) {
			// A sender that stalls catches up in a burst stamped when it is sent (ivrd's pacer
			// restarts its schedule only after 200 ms): the packets due at 0.82–1.0 s all come
			// at 1.01 s, after the mix at 1.0 s. The gap they leave must not be mixed yet.
			for i := range ps {
				if ps[i].at >= 820*ms && ps[i].at < 1010*ms {
					ps[i].at = 1010 * ms
				}
			}
		}},
		{"held up 400 ms, stamped on schedule", func(ps []packet) {
			// Stamped from RTP timestamps, the packets due at 0.9–1.28 s all come at 1.3 s,
			// after the mixer has written up to 1.0 s (its 1.25 s mix, less the lag): 0.9–1.0 s
			// is lost, nothing moves.
			for i := range ps {
				if ps[i].at >= 900*ms && ps[i].at < 1300*ms {
					ps[i].deliver = 1300 * ms
				}
			}
		}},
		{"bursts of three", func(ps []packet) {
			for i := range ps {
				ps[i].at = ps[min(i/3*3+2, len(ps)-1)].at
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := manualRecorder(t)
			start := time.Now()
			rec, err := r.Start("timeline", start, Mono)
			if err != nil {
				t.Fatal(err)
			}
			in := frames(false, 1000, 500*ms, time.Second)
			tt.arrival(in)
			ps := append(in, frames(true, 2000, 3500*ms, 500*ms)...)
			res := simulate(t, r, rec, start, ps, 5*time.Second)
			if !near(res.Duration, 5*time.Second, 100*ms) {
				t.Errorf("Result.Duration %v, want 5 s", res.Duration)
			}
			if fi, err := os.Stat(res.Path); err != nil || fi.Size() != res.Bytes {
				t.Errorf("file %s: %v, size vs Result.Bytes %d", res.Path, err, res.Bytes)
			}
			if _, err := os.Stat(r.PartPath("timeline")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf(".part still there: %v", err)
			}
			for name, pcm := range decodeAll(t, res.Path) {
				t.Run(name, func(t *testing.T) {
					if d := audio.Duration(len(pcm)); !near(d, 5*time.Second, 150*ms) {
						t.Errorf("decoded length %v, want 5 s ± 0.15 s", d)
					}
					if strings.HasPrefix(tt.name, "held up 400") {
						checkHole(t, pcm, 1000, audio.Span{Start: 900 * ms, End: 1000 * ms})
					} else {
						checkSpans(t, pcm, 1000, audio.Span{Start: 500 * ms, End: 1500 * ms}, 80*ms)
					}
					checkSpans(t, pcm, 2000, audio.Span{Start: 3500 * ms, End: 4000 * ms}, 80*ms)
					checkSilent(t, pcm, 0, 420*ms)
					checkSilent(t, pcm, 1580*ms, 3420*ms)
					checkSilent(t, pcm, 4080*ms, 5*time.Second)
				})
			}
		})
	}
}

// TestRecordingMixesBothDirections: the caller talks over a prompt; both must be in the file.
func TestRecordingMixesBothDirections(t *testing.T) {
	r := manualRecorder(t)
	start := time.Now()
	rec, err := r.Start("mixed", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	ps := append(frames(false, 1000, 500*ms, 2*time.Second), frames(true, 2000, 1000*ms, time.Second)...)
	res := simulate(t, r, rec, start, ps, 3*time.Second)
	for name, pcm := range decodeAll(t, res.Path) {
		t.Run(name, func(t *testing.T) {
			only1k := segment(pcm, 600*ms, 900*ms)
			both := segment(pcm, 1100*ms, 1900*ms)
			if l := audio.ToneLevel(only1k, audio.Rate, 1000); l < 0.9 {
				t.Errorf("caller alone: 1 kHz level %.2f", l)
			}
			l1, l2 := audio.ToneLevel(both, audio.Rate, 1000), audio.ToneLevel(both, audio.Rate, 2000)
			if l1 < 0.35 || l2 < 0.35 || l1+l2 < 0.9 {
				t.Errorf("both talking: 1 kHz %.2f, 2 kHz %.2f; want about half each", l1, l2)
			}
			// Two 9000-peak tones: the mix must carry both amplitudes (RMS ≈ 9000).
			if rms := audio.RMS(both); rms < 7500 || rms > 10500 {
				t.Errorf("mixed RMS %.0f, want ≈ 9000", rms)
			}
			// Over the 1 kHz tone the 2 kHz one carries about half the energy.
			checkSpansAt(t, pcm, 2000, 0.3, audio.Span{Start: 1000 * ms, End: 2000 * ms}, 80*ms)
			checkSpansAt(t, pcm, 1000, 0.3, audio.Span{Start: 500 * ms, End: 2500 * ms}, 80*ms)
			checkSilent(t, pcm, 2580*ms, 3*time.Second)
		})
	}
}

// TestRecordingRealTime runs the real mixer goroutine: the file must grow on disk while the
// call runs, and the tone must land where the wall clock put it.
func TestRecordingRealTime(t *testing.T) {
	r, err := NewRecorder(t.TempDir(), quiet, WithMixInterval(100*ms))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec, err := r.Start("live", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	g := &tone{freq: 1000, amp: 9000}
	next := start.Add(300 * ms)
	for next.Before(start.Add(900 * ms)) {
		time.Sleep(time.Until(next))
		rec.Inbound(g.frame(audio.FrameSamples), next) // scheduled time, as from RTP timestamps
		next = next.Add(20 * ms)
	}
	time.Sleep(time.Until(start.Add(1500 * ms)))
	fi, err := os.Stat(r.PartPath("live"))
	if err != nil {
		t.Fatal(err)
	}
	// 1.5 s in, everything up to ~1 s must be on disk: at least the tone's frames.
	if fi.Size() < 2500 {
		t.Fatalf(".part is %d bytes 1.5 s into the call: not streaming", fi.Size())
	}
	res, err := rec.Finish(start.Add(1800 * ms))
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Duration, 1800*ms, 100*ms) {
		t.Errorf("duration %v, want 1.8 s", res.Duration)
	}
	pcm := decodeAll(t, res.Path)["ffmpeg"]
	checkSpans(t, pcm, 1000, audio.Span{Start: 300 * ms, End: 900 * ms}, 80*ms)
	checkSilent(t, pcm, 0, 220*ms)
	checkSilent(t, pcm, 980*ms, 1800*ms)
}

// TestRecordingConcurrent hammers Inbound and Outbound from several goroutines while the
// mixer runs and Finish lands in the middle (run it with -race).
func TestRecordingConcurrent(t *testing.T) {
	r, err := NewRecorder(t.TempDir(), quiet, WithMixInterval(5*ms), WithMixLag(0))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec, err := r.Start("race", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		wg.Go(func() {
			g := &tone{freq: 500 + 250*float64(i), amp: 3000}
			buf := g.frame(audio.FrameSamples)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					rec.Inbound(buf, time.Now())
				} else {
					rec.Outbound(buf, time.Now())
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	time.Sleep(300 * ms)
	var results [3]Result
	var errs [3]error
	var fw sync.WaitGroup
	for i := range results {
		fw.Go(func() { results[i], errs[i] = rec.Finish(time.Now()) })
	}
	fw.Wait()
	time.Sleep(20 * ms) // taps keep calling after Finish: ignored
	close(stop)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrFinished):
			t.Fatalf("Finish %d: %v", i, err)
		}
		if results[i] != results[0] {
			t.Fatalf("Finish results differ: %+v vs %+v", results[i], results[0])
		}
	}
	if ok != 1 {
		t.Fatalf("%d Finish calls succeeded, want exactly 1", ok)
	}
	if _, _, err := audio.DecodeMP3(mustRead(t, results[0].Path)); err != nil {
		t.Fatal(err)
	}
	rec.Inbound(make([]int16, 160), time.Now())
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecordingDropsNothingOnTime checks the bookkeeping: a steady call loses no audio, and a
// wildly early or late packet neither shifts the rest nor breaks the file.
func TestRecordingDropsNothingOnTime(t *testing.T) {
	r := manualRecorder(t)
	start := time.Now()
	rec, err := r.Start("drops", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	// A packet stamped 10 s in the future and one from before the start: both dropped.
	rec.Inbound(make([]int16, 160), start.Add(10*time.Second))
	rec.Outbound(make([]int16, 160), start.Add(-5*time.Second))
	res := simulate(t, r, rec, start, frames(false, 1000, 0, 2*time.Second), 2500*ms)
	rec.mu.Lock()
	dropped := rec.dropped
	rec.mu.Unlock()
	if dropped != 320 {
		t.Errorf("dropped %d samples, want 320 (the two bogus packets only)", dropped)
	}
	if !near(res.Duration, 2500*ms, 100*ms) {
		t.Errorf("duration %v, want 2.5 s", res.Duration)
	}
	// The tone starts at 0, but an MP3 cannot carry the first MP3EncoderDelay samples (the
	// decoder's pre-roll stands in their place), so it is heard from 138 ms on.
	pcm := decodeAll(t, res.Path)["minimp3"]
	checkSpans(t, pcm, 1000, audio.Span{Start: audio.Duration(audio.MP3EncoderDelay), End: 2000 * ms}, 30*ms)
}

func TestRecordingMemory(t *testing.T) {
	r, err := NewRecorder(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	recs := make([]*Recording, n)
	start := time.Now()
	for i := range recs {
		if recs[i], err = r.Start("mem"+string(rune('a'+i%26))+string(rune('a'+i/26)), start, Mono); err != nil {
			t.Fatal(err)
		}
		recs[i].Inbound(make([]int16, 160), time.Now())
	}
	time.Sleep(300 * ms) // let every mixer run once
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc+after.StackInuse) - int64(before.HeapAlloc+before.StackInuse)) / n
	t.Logf("Go memory per recording: %d bytes", per)
	if per > 64<<10 {
		t.Errorf("Go memory per recording %d bytes, want ≤ 64 KiB", per)
	}
	for _, rec := range recs {
		if _, err := rec.Finish(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrackInvariants throws random packets (any stamp, size and order) and mixer runs at a
// recording and checks after every step what the design rests on: neither track ends
// before the mixed position or more than a ring ahead of it, and every slot at or past a
// track's end is zero (so a gap is silence without being written).
func TestTrackInvariants(t *testing.T) {
	r := manualRecorder(t)
	start := time.Now()
	rec, err := r.Start("invariants", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	g := &tone{freq: 1000, amp: 9000}
	var now time.Duration
	check := func(step int) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for name, tr := range map[string]*track{"in": &rec.in, "out": &rec.out} {
			if tr.next < rec.mixed || tr.next-rec.mixed > ringSize {
				t.Fatalf("step %d: %s next %d, mixed %d", step, name, tr.next, rec.mixed)
			}
			if tr.gapTo-tr.gapFrom > ringSize {
				t.Fatalf("step %d: %s gap [%d, %d) wider than the ring", step, name, tr.gapFrom, tr.gapTo)
			}
			for q := tr.next; q < rec.mixed+ringSize; q++ {
				if tr.ring[q&ringMask] != 0 {
					t.Fatalf("step %d: %s slot for %d (next %d) not zero", step, name, q, tr.next)
				}
			}
		}
	}
	for step := range 3000 {
		now += time.Duration(rng.IntN(25)) * ms
		switch rng.IntN(6) {
		case 0:
			rec.mixTo(rec.pos(start.Add(now - r.lag)))
		default:
			at := start.Add(now - time.Duration(rng.IntN(600))*ms + time.Duration(rng.IntN(100))*ms)
			switch rng.IntN(50) {
			case 0:
				at = time.Time{} // a zero stamp
			case 1:
				at = start.Add(time.Duration(rng.Int64()))
			}
			pcm := g.frame(1 + rng.IntN(480))
			if rng.IntN(2) == 0 {
				rec.Inbound(pcm, at)
			} else {
				rec.Outbound(pcm, at)
			}
		}
		check(step)
	}
	if _, err := rec.Finish(start.Add(now)); err != nil {
		t.Fatal(err)
	}
}
