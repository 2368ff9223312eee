package audio

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio/audiotest"
)

// BenchmarkAsyncMP3Encoder measures the CPU (user + system, every thread) that the encoding
// threads spend per second of audio, for 200 mono streams written a quarter second at a time
// in turn, as the recorder's mixer writes them: each iteration is 10 s of every stream. In
// "keeping-up" the threads encode everything written before the next quarter second is (a
// machine with CPU to spare); in "behind" the streams are written as fast as the threads
// take them (a machine short of CPU: each stream has several segments queued).
func BenchmarkAsyncMP3Encoder(b *testing.B) {
	b.Run("keeping-up", func(b *testing.B) { benchmarkAsync(b, true) })
	b.Run("behind", func(b *testing.B) { benchmarkAsync(b, false) })
}

func benchmarkAsync(b *testing.B, keepUp bool) {
	const (
		streams = 200
		seconds = 10
		step    = 2000 // samples: 250 ms
	)
	sig := asyncSignal(1)
	dir := b.TempDir()
	var cpu time.Duration
	for i := 0; b.Loop(); i++ {
		encs := make([]*AsyncMP3Encoder, streams)
		for k := range encs {
			encs[k] = asyncFile(b, filepath.Join(dir, fmt.Sprintf("%d-%d.mp3", i, k)), 32, 1)
		}
		c0 := audiotest.ProcessCPU()
		for off := 0; off < seconds*Rate; off += step {
			for k, e := range encs {
				o := (off + 977*k) % (len(sig) - step)
				if err := e.Write(sig[o : o+step]); err != nil {
					b.Fatal(err)
				}
			}
			for keepUp && EncoderQueue() > 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		for _, e := range encs {
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
		}
		cpu += audiotest.ProcessCPU() - c0
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*streams*seconds), "µs-cpu/audio-s")
}
