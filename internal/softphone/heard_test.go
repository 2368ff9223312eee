package softphone

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// TestHeardTimeAligned: frames land where their arrival puts them: a pause of the far end is
// silence of its length, a burst that arrives early does not push the rest later, and the file
// lasts as long as the call.
func TestHeardTimeAligned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heard.wav")
	h, err := newHeard(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	h.start(t0)
	tone := audio.SineWave(1000, 20*time.Millisecond, 8000)
	frame := func(at time.Duration) { h.Inbound(tone, t0.Add(at)) }
	// 0–1 s: a frame every 20 ms, each arriving 5 ms after its end.
	for at := 25 * time.Millisecond; at <= time.Second+5*time.Millisecond; at += 20 * time.Millisecond {
		frame(at)
	}
	// 1–2 s: nothing. 2–3 s: frames again, arriving up to 40 ms late (jitter).
	for i, at := 0, 2020*time.Millisecond; at <= 3000*time.Millisecond; i, at = i+1, at+20*time.Millisecond {
		frame(at + time.Duration(i%3)*20*time.Millisecond)
	}
	// 3.5–4 s: frames whose first 200 ms come in one late burst (at 3.7 s): heard from then
	// on, and what follows is not pushed later by the burst.
	for at := 3520 * time.Millisecond; at <= 4000*time.Millisecond; at += 20 * time.Millisecond {
		frame(max(at, 3700*time.Millisecond))
	}
	samples, size, err := h.finish(t0.Add(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pcm, _, err := audio.DecodeWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	if samples != int64(len(pcm)) || size != int64(len(b)) || len(pcm) != 5*audio.Rate {
		t.Fatalf("%d samples (%d read back), %d bytes (file %d): want 5 s", samples, len(pcm), size, len(b))
	}
	spans := audio.ToneSpans(pcm, audio.Rate, 1000, 20*time.Millisecond, 0.5)
	if len(spans) != 3 {
		t.Fatalf("tone heard as %v, want three stretches", spans)
	}
	near := func(got, want time.Duration) bool {
		return got > want-heardSlack-20*time.Millisecond && got < want+heardSlack+20*time.Millisecond
	}
	if !near(spans[0].Start, 0) || !near(spans[0].End, time.Second) || !near(spans[1].Start, 2*time.Second) || !near(spans[1].End, 3*time.Second) ||
		!near(spans[2].Start, 3700*time.Millisecond) || !near(spans[2].End, 4*time.Second) {
		t.Fatalf("tone heard as %v, want 0–1 s, 2–3 s and 3.7–4 s", spans)
	}
}

// TestHeardNotAnswered: a call that was not answered leaves no file behind.
func TestHeardNotAnswered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heard.wav")
	h, err := newHeard(path)
	if err != nil {
		t.Fatal(err)
	}
	h.abort()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file left: %v", err)
	}
	var none *heard
	none.Inbound(nil, time.Now())
	if _, _, err := none.finish(time.Now()); err != nil {
		t.Fatal(err)
	}
}
