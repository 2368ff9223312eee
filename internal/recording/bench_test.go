package recording

import (
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// BenchmarkRecording measures the recorder's CPU per second of call audio: each iteration is
// one call-second (50 inbound and 50 outbound 20 ms packets, four mixer runs, LAME encoding
// and the file writes). The %core/call metric is the share of one core a single recorded
// call keeps busy.
func BenchmarkRecording(b *testing.B) {
	r := manualRecorder(b)
	start := time.Now()
	rec, err := r.Start("bench", start, Mono)
	if err != nil {
		b.Fatal(err)
	}
	in := (&tone{freq: 1000, amp: 8000}).frame(audio.FrameSamples)
	out := (&tone{freq: 440, amp: 8000}).frame(audio.FrameSamples)
	const frame = 20 * time.Millisecond
	var t time.Duration
	b.ReportAllocs()
	for b.Loop() {
		for k := range 50 {
			at := start.Add(t)
			rec.Inbound(in, at)
			rec.Outbound(out, at)
			t += frame
			if k%12 == 11 || k == 49 {
				rec.mixTo(rec.pos(at.Add(-r.lag)))
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Second)*100, "%core/call")
	if _, err := rec.Finish(start.Add(t)); err != nil {
		b.Fatal(err)
	}
}
