package recording

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// runDecoder runs an external decoder writing s16le to stdout; anything on stderr (a decode
// error or warning) fails the test.
func runDecoder(t *testing.T, name string, args ...string) []int16 {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not installed (scripts/install-deps.sh installs it): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Fatalf("%s reported errors decoding: %s", name, s)
	}
	b := stdout.Bytes()
	pcm := make([]int16, len(b)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return pcm
}

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
	return map[string][]int16{
		"ffmpeg":  runDecoder(t, "ffmpeg", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "8000", "-"),
		"mpg123":  runDecoder(t, "mpg123", "-q", "-s", path),
		"minimp3": mm,
	}
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
