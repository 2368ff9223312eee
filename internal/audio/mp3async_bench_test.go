package audio

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAsyncMP3Encoder measures the CPU (user + system, every thread) that the encoding
// threads spend per second of audio, for 200 mono streams written a quarter second at a time
// in turn, as the recorder's mixer writes them: each iteration is 10 s of every stream.
func BenchmarkAsyncMP3Encoder(b *testing.B) {
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
		files := make([]*os.File, streams)
		for k := range encs {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%d-%d.mp3", i, k)))
			if err != nil {
				b.Fatal(err)
			}
			files[k] = f
			if encs[k], err = NewAsyncMP3Encoder(f, 32, 1); err != nil {
				b.Fatal(err)
			}
		}
		c0 := processCPU()
		for off := 0; off < seconds*Rate; off += step {
			for k, e := range encs {
				o := (off + 977*k) % (len(sig) - step)
				if err := e.Write(sig[o : o+step]); err != nil {
					b.Fatal(err)
				}
			}
			for EncoderQueue() > 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		for k, e := range encs {
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
			files[k].Close()
			os.Remove(files[k].Name())
		}
		cpu += processCPU() - c0
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*streams*seconds), "µs-cpu/audio-s")
}

// processCPU is the CPU the process has used, user and system, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
