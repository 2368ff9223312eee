package audio

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/ivrd/ivrd/internal/audio/audiotest"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// decodeAll decodes an MP3 file with ffmpeg, mpg123 and DecodeMP3, all at 8 kHz mono.
func decodeAll(t *testing.T, path string) map[string][]int16 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mm, rate, err := DecodeMP3(data)
	if err != nil {
		t.Fatalf("DecodeMP3: %v", err)
	}
	if rate != Rate {
		t.Fatalf("DecodeMP3 rate %d, want %d", rate, Rate)
	}
	out := audiotest.Decoders(t, path)
	out["minimp3"] = mm
	return out
}

func encodeFile(t *testing.T, pcm []int16, kbps int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.mp3")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := NewMP3Encoder(f, kbps)
	if err != nil {
		t.Fatal(err)
	}
	// Feed it as a call would: 20 ms at a time.
	for len(pcm) > 0 {
		n := min(len(pcm), FrameSamples)
		if err := e.Write(pcm[:n]); err != nil {
			t.Fatal(err)
		}
		pcm = pcm[n:]
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMP3EncoderSineDecodes(t *testing.T) {
	const d = 3 * time.Second
	path := encodeFile(t, SineWave(1000, d, 12000), 0)
	for name, pcm := range decodeAll(t, path) {
		t.Run(name, func(t *testing.T) {
			got := Duration(len(pcm))
			want := d + Duration(MP3EncoderDelay)
			if diff := got - want; diff < -100*time.Millisecond || diff > 100*time.Millisecond {
				t.Errorf("decoded %v, want %v ± 0.1 s", got, want)
			}
			mid := pcm[Samples(500*time.Millisecond):Samples(2500*time.Millisecond)]
			if l := ToneLevel(mid, Rate, 1000); l < 0.9 {
				t.Errorf("1 kHz level %.3f, want ≥ 0.9", l)
			}
			if l := ToneLevel(mid, Rate, 2000); l > 0.05 {
				t.Errorf("2 kHz level %.3f, want ≈ 0", l)
			}
			if r := RMS(mid); r < 12000/1.414*0.8 || r > 12000/1.414*1.2 {
				t.Errorf("RMS %.0f, want ≈ %.0f", r, 12000/1.414)
			}
		})
	}
}

// TestMP3EncoderDelay pins MP3EncoderDelay: a tone that starts at sample N of the input starts
// at sample N+MP3EncoderDelay in what every decoder outputs.
func TestMP3EncoderDelay(t *testing.T) {
	onset := Samples(500 * time.Millisecond)
	pcm := make([]int16, Samples(1500*time.Millisecond))
	copy(pcm[onset:], SineWave(1000, time.Second, 12000))
	path := encodeFile(t, pcm, 32)
	first := func(x []int16) int {
		for i, v := range x {
			if v > 3000 || v < -3000 {
				return i
			}
		}
		return -1
	}
	wantAt := first(pcm) + MP3EncoderDelay
	for name, dec := range decodeAll(t, path) {
		if got := first(dec); got < wantAt-4 || got > wantAt+4 {
			t.Errorf("%s: tone starts at sample %d, want %d (delay %d)", name, got, wantAt, got-first(pcm))
		}
	}
}

// countingWriter records the size of every write.
type countingWriter struct {
	writes []int
	total  int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, len(p))
	c.total += len(p)
	return len(p), nil
}

func TestMP3EncoderStreams(t *testing.T) {
	var w countingWriter
	e, err := NewMP3Encoder(&w, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tone := SineWave(440, 2*time.Second, 8000)
	for i := 0; i < len(tone); i += FrameSamples {
		if err := e.Write(tone[i : i+FrameSamples]); err != nil {
			t.Fatal(err)
		}
	}
	// 2 s at 32 kbit/s is 8000 bytes; LAME holds back well under half a second.
	if w.total < 6000 {
		t.Fatalf("only %d bytes written before Close: the encoder is buffering", w.total)
	}
	if len(w.writes) < 10 {
		t.Fatalf("%d writes for 2 s: want output as it is produced", len(w.writes))
	}
	if e.Samples() != int64(len(tone)) || e.Bytes() != int64(w.total) {
		t.Fatalf("Samples %d Bytes %d, want %d %d", e.Samples(), e.Bytes(), len(tone), w.total)
	}
}

func TestMP3EncoderBitrates(t *testing.T) {
	tests := []struct {
		kbps    int
		wantErr bool
	}{
		{0, false}, {8, false}, {16, false}, {24, false}, {32, false}, {48, false}, {64, false},
		{-1, true}, {7, true}, {33, true}, {80, true}, {128, true},
	}
	tone := SineWave(1000, 4*time.Second, 10000)
	for _, tt := range tests {
		var buf bytes.Buffer
		e, err := NewMP3Encoder(&buf, tt.kbps)
		if (err != nil) != tt.wantErr {
			t.Fatalf("kbps %d: err %v, want error %v", tt.kbps, err, tt.wantErr)
		}
		if err != nil {
			continue
		}
		if err := e.Write(tone); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		kbps := tt.kbps
		if kbps == 0 {
			kbps = DefaultMP3Kbps
		}
		// CBR: bytes ≈ kbps/8 per ms of output (input + delay + last-frame padding).
		want := float64(kbps) * 1000 / 8 * (4 + 0.25)
		if got := float64(buf.Len()); got < want*0.93 || got > want*1.07 {
			t.Errorf("kbps %d: %d bytes, want ≈ %.0f", tt.kbps, buf.Len(), want)
		}
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestMP3EncoderErrors(t *testing.T) {
	if _, err := NewMP3Encoder(nil, 32); err == nil {
		t.Fatal("nil writer accepted")
	}
	e, err := NewMP3Encoder(&failWriter{after: 1}, 32)
	if err != nil {
		t.Fatal(err)
	}
	tone := SineWave(1000, time.Second, 10000)
	var werr error
	for i := 0; i < 10 && werr == nil; i++ {
		werr = e.Write(tone)
	}
	if werr == nil || !strings.Contains(werr.Error(), "disk full") {
		t.Fatalf("write error not reported: %v", werr)
	}
	if err := e.Write(tone); !errors.Is(err, werr) && err.Error() != werr.Error() {
		t.Fatalf("write error not sticky: %v", err)
	}
	if err := e.Close(); err == nil {
		t.Fatal("Close after a failed write returned nil")
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := e.Write(tone); !errors.Is(err, ErrEncoderClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

// TestMP3EncoderNoLeak checks that Close, and the cleanup of an encoder never closed, give
// LAME's C state back.
func TestMP3EncoderNoLeak(t *testing.T) {
	tone := SineWave(1000, 300*time.Millisecond, 10000)
	cycle := func(close bool) {
		e, err := NewMP3Encoder(&bytes.Buffer{}, 32)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Write(tone); err != nil {
			t.Fatal(err)
		}
		if close {
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cycle(true) // LAME's one-time tables
	base := cHeapInUse()
	for range 50 {
		cycle(true)
	}
	// One LAME state is ~450 KB; 50 leaked would be ~22 MB.
	if grew := cHeapInUse() - base; grew > 256<<10 {
		t.Fatalf("C heap grew by %d bytes over 50 encoders closed", grew)
	}
	for range 20 {
		cycle(false)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		grew := cHeapInUse() - base
		if grew <= 256<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("C heap still %d bytes up after dropping 20 unclosed encoders", grew)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func BenchmarkMP3Encoder(b *testing.B) {
	tone := SineWave(1000, time.Second, 10000)
	e, err := NewMP3Encoder(io.Discard, 32)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.SetBytes(int64(len(tone) * 2))
	for b.Loop() {
		if err := e.Write(tone); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Second)*100, "%core/call")
}

// BenchmarkMP3EncoderMemory reports the memory each live encoder keeps resident: 500 at
// once, each having encoded 10 s of a tone, after one encoder was opened and closed (which
// is when glibc's dynamic mmap threshold would rise past LAME's state; see ivrd_malloc_tune).
func BenchmarkMP3EncoderMemory(b *testing.B) {
	const n = 500
	tone := SineWave(1000, time.Second, 10000)
	if e, err := NewMP3Encoder(io.Discard, 32); err != nil {
		b.Fatal(err)
	} else if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	var kib float64
	for b.Loop() {
		before := residentKiB(b)
		encs := make([]*MP3Encoder, n)
		for i := range encs {
			e, err := NewMP3Encoder(io.Discard, 32)
			if err != nil {
				b.Fatal(err)
			}
			encs[i] = e
			for range 10 {
				if err := e.Write(tone); err != nil {
					b.Fatal(err)
				}
			}
		}
		kib += float64(residentKiB(b)-before) / n
		for _, e := range encs {
			if err := e.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(kib/float64(b.N), "KiB/encoder")
}

// residentKiB is the process's resident set (VmRSS).
func residentKiB(b *testing.B) int64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for l := range strings.Lines(string(s)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kib int64
			if _, err := fmt.Sscan(v, &kib); err != nil {
				b.Fatal(err)
			}
			return kib
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
