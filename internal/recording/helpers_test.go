package recording

import (
	"log/slog"
	"math"
	"os"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/audio/audiotest"
)

// decodeAll decodes the MP3 at path with ffmpeg, mpg123 and audio.DecodeMP3, at 8 kHz mono.
func decodeAll(t *testing.T, path string) map[string][]int16 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mm, rate, err := audio.DecodeMP3(data)
	if err != nil {
		t.Fatalf("DecodeMP3: %v", err)
	}
	if rate != audio.Rate {
		t.Fatalf("DecodeMP3 rate %d", rate)
	}
	out := audiotest.Decoders(t, path)
	out["minimp3"] = mm
	return out
}

// stereo decodes a stereo MP3 with ffmpeg into its left and right channels.
func stereo(t *testing.T, mp3 []byte) (left, right []int16) {
	t.Helper()
	return audiotest.Stereo(t, mp3)
}

// tone is an endless sine generator with continuous phase across frames.
type tone struct {
	freq float64
	amp  float64
	n    int
}

func (g *tone) frame(n int) []int16 {
	out := make([]int16, n)
	w := 2 * math.Pi * g.freq / audio.Rate
	for i := range out {
		out[i] = int16(g.amp * math.Sin(w*float64(g.n)))
		g.n++
	}
	return out
}

// near reports whether a is within tol of b.
func near(a, b, tol time.Duration) bool { return a >= b-tol && a <= b+tol }

// segment returns pcm between two offsets, clamped.
func segment(pcm []int16, from, to time.Duration) []int16 {
	a, b := max(audio.Samples(from), 0), min(audio.Samples(to), len(pcm))
	if a >= b {
		return nil
	}
	return pcm[a:b]
}

// quiet discards the recorder's logs in tests.
var quiet = WithLogger(slog.New(slog.DiscardHandler))

// manualRecorder returns a Recorder whose recordings have no mixer goroutine: the test moves
// the mixer with mixTo, so it can run a call faster than real time.
func manualRecorder(t testing.TB, opts ...Option) *Recorder {
	t.Helper()
	r, err := NewRecorder(t.TempDir(), append([]Option{quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.manual = true
	return r
}
