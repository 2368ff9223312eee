package recording

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/audio/audiotest"
)

// BenchmarkRecordingMemory opens many recordings at once (IVRD_BENCH_RECORDINGS, default
// 1000; Dual with IVRD_BENCH_DUAL=1), feeds every one 6 s of both directions in 20 ms
// frames, mixing each a quarter second at a time as the mix loop does (and letting the
// encoding threads catch up after every quarter second of all of them), and reports the
// process's resident memory growth per open recording (VmRSS with every recording open and
// its encoding done, less VmRSS before the first) and the CPU (user + system, all threads:
// starting, mixing, encoding, writing) per recorded second, over the whole run and over its
// steady part (after the first two seconds). Run it alone, once:
//
//	go test -run '^$' -bench RecordingMemory -benchtime 1x ./internal/recording/
func BenchmarkRecordingMemory(b *testing.B) {
	n := 1000
	if s := os.Getenv("IVRD_BENCH_RECORDINGS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("IVRD_BENCH_RECORDINGS=%q", s)
		}
		n = v
	}
	channels := Mono
	if os.Getenv("IVRD_BENCH_DUAL") == "1" {
		channels = Dual
	}
	const (
		seconds = 6
		step    = 250 * time.Millisecond
		frame   = 20 * time.Millisecond
		warmup  = 2 * time.Second
	)
	in := (&tone{freq: 1000, amp: 8000}).frame(audio.Samples((seconds + 1) * time.Second))
	out := (&tone{freq: 440, amp: 6000}).frame(audio.Samples((seconds + 1) * time.Second))
	for i := range out {
		out[i] += int16((i*7919)%1200 - 600) // some noise: not a pure tone for LAME
	}
	for b.Loop() {
		r := manualRecorder(b)
		runtime.GC()
		before := vmRSS(b)
		cpu0 := audiotest.ProcessCPU()
		start := time.Now()
		recs := make([]*Recording, n)
		for i := range recs {
			rec, err := r.Start(fmt.Sprintf("m%d", i), start, channels)
			if err != nil {
				b.Fatal(err)
			}
			recs[i] = rec
		}
		var t time.Duration
		var cpuWarm time.Duration // CPU when the first warm-up seconds are done
		for t < seconds*time.Second {
			if t == warmup {
				cpuWarm = audiotest.ProcessCPU()
			}
			for _, rec := range recs {
				for d := time.Duration(0); d < step; d += frame {
					k := audio.Samples(t + d)
					rec.Inbound(in[k:k+audio.FrameSamples], start.Add(t+d))
					rec.Outbound(out[k:k+audio.FrameSamples], start.Add(t+d))
				}
				rec.mixTo(rec.pos(start.Add(t + step - r.lag)))
			}
			t += step
			// The encoding threads keep up, as in a call running in real time (at 1,000 calls
			// they are far from full): a backlog of the test's own making would count too.
			for audio.EncoderQueue() > 0 {
				time.Sleep(time.Millisecond)
			}
		}
		cpuEnd := audiotest.ProcessCPU()
		cpu, steady := cpuEnd-cpu0, cpuEnd-cpuWarm
		after := vmRSS(b)
		b.ReportMetric(float64(after-before)/float64(n), "KiB/rec")
		perSec := func(d, s time.Duration) float64 { return float64(d.Microseconds()) / (float64(n) * s.Seconds()) }
		b.ReportMetric(perSec(cpu, seconds*time.Second), "µs-cpu/rec-s")
		b.ReportMetric(perSec(steady, seconds*time.Second-warmup), "µs-cpu/rec-s-steady")
		b.Logf("%d %s recordings: VmRSS %d -> %d KiB (%.1f KiB each); CPU %v for %d recorded s (%.1f µs per recorded second; %.1f after the first %v)",
			n, map[int]string{Mono: "mono", Dual: "dual"}[channels], before, after, float64(after-before)/float64(n),
			cpu, n*seconds, perSec(cpu, seconds*time.Second), perSec(steady, seconds*time.Second-warmup), warmup)
		for _, rec := range recs {
			if _, err := rec.Finish(start.Add(t)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// vmRSS is the process's resident set in KiB.
func vmRSS(tb testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kib
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}
