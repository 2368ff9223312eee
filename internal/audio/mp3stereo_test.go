package audio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio/audiotest"
)

// interleave makes stereo samples of left and right (the longer one's tail against silence).
func interleave(left, right []int16) []int16 {
	n := max(len(left), len(right))
	out := make([]int16, 2*n)
	for i := range n {
		if i < len(left) {
			out[2*i] = left[i]
		}
		if i < len(right) {
			out[2*i+1] = right[i]
		}
	}
	return out
}

// TestMP3EncoderStereo: a stereo stream at 8 kHz (MPEG-2.5) keeps its channels apart: 1 kHz on
// the left only, 2 kHz on the right only, each where it was, with the mono stream's delay; the
// sync and async encoders make the same bytes, whatever the block sizes, at every bit rate.
func TestMP3EncoderStereo(t *testing.T) {
	onset := Samples(500 * time.Millisecond)
	left := make([]int16, Samples(3*time.Second))
	right := make([]int16, len(left))
	copy(left[onset:], SineWave(1000, time.Second, 12000))
	copy(right[2*onset:], SineWave(2000, time.Second, 12000)) // 1.0–2.0 s
	pcm := interleave(left, right)
	for _, kbps := range []int{8, 32, 64} {
		var want bytes.Buffer
		e, err := NewMP3EncoderChannels(&want, kbps, 2)
		if err != nil {
			t.Fatalf("%d kbps: %v", kbps, err)
		}
		for off := 0; off < len(pcm); off += 2 * FrameSamples {
			if err := e.Write(pcm[off:min(off+2*FrameSamples, len(pcm))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Write(pcm[:3]); err == nil {
			t.Fatal("an odd number of stereo samples was accepted")
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}

		path := filepath.Join(t.TempDir(), "s.mp3")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAsyncMP3Encoder(f, kbps, 2)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(pcm); off += 2 * 1001 {
			if err := a.Write(pcm[off:min(off+2*1001, len(pcm))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, want.Bytes()) || a.Bytes() != int64(len(got)) {
			t.Fatalf("%d kbps: async %d bytes (Bytes %d) differ from sync %d", kbps, len(got), a.Bytes(), want.Len())
		}
		// Twice the per-channel bit rate, at most 64 kbit/s.
		if wantLen := float64(min(2*kbps, 64)*1000/8) * 3.0; float64(len(got)) < wantLen*0.9 || float64(len(got)) > wantLen*1.2 {
			t.Errorf("%d kbps: %d bytes for 3 s, want about %.0f", kbps, len(got), wantLen)
		}

		l, r := audiotest.Stereo(t, got)
		if d := Duration(len(l)); d < 3*time.Second || d > 3*time.Second+Duration(MP3EncoderDelay)+100*time.Millisecond {
			t.Errorf("%d kbps: decoded %v", kbps, d)
		}
		spans := func(x []int16, freq float64) []Span { return ToneSpans(x, Rate, freq, 20*time.Millisecond, 0.5) }
		delay := Duration(MP3EncoderDelay)
		near := func(a, b time.Duration) bool { return a-b < 30*time.Millisecond && b-a < 30*time.Millisecond }
		if s := spans(l, 1000); len(s) != 1 || !near(s[0].Start, 500*time.Millisecond+delay) || !near(s[0].Len(), time.Second) {
			t.Errorf("%d kbps: left 1 kHz at %v, want 1 s at %v", kbps, s, 500*time.Millisecond+delay)
		}
		if s := spans(r, 2000); len(s) != 1 || !near(s[0].Start, time.Second+delay) || !near(s[0].Len(), time.Second) {
			t.Errorf("%d kbps: right 2 kHz at %v, want 1 s at %v", kbps, s, time.Second+delay)
		}
		// Neither channel carries the other's tone (M/S coding would leak it at low rates).
		if s := spans(l, 2000); len(s) != 0 {
			t.Errorf("%d kbps: 2 kHz on the left at %v", kbps, s)
		}
		if s := spans(r, 1000); len(s) != 0 {
			t.Errorf("%d kbps: 1 kHz on the right at %v", kbps, s)
		}
		lo, hi := Samples(1100*time.Millisecond), Samples(1400*time.Millisecond)
		if x, y := RMS(l[lo:hi]), RMS(r[lo:hi]); x < 5000 || y < 5000 {
			t.Errorf("%d kbps: both tones at 1.1–1.4 s: left RMS %.0f, right %.0f", kbps, x, y)
		}
		if x := RMS(r[Samples(2500*time.Millisecond):]); x > 100 {
			t.Errorf("%d kbps: right after its tone RMS %.0f, want silence", kbps, x)
		}
	}
	if _, err := NewMP3EncoderChannels(&bytes.Buffer{}, 32, 3); err == nil {
		t.Fatal("3 channels accepted")
	}
}
