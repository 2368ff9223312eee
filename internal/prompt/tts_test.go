package prompt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

func needEspeak(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng not installed")
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestPrompter(t testing.TB, opts Options) *Prompter {
	t.Helper()
	if opts.Log == nil {
		opts.Log = quietLog()
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// countingEspeak returns the path of a wrapper around espeak-ng that logs each run to a file,
// and a function that counts the runs so far.
func countingEspeak(t *testing.T) (string, func() int) {
	t.Helper()
	needEspeak(t)
	dir := t.TempDir()
	real, _ := exec.LookPath("espeak-ng")
	runs := filepath.Join(dir, "runs")
	script := filepath.Join(dir, "espeak-counting")
	body := fmt.Sprintf("#!/bin/sh\necho run >> %q\nexec %q \"$@\"\n", runs, real)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "run")
	}
}

func prepare(t testing.TB, p *Prompter, msg string) []int16 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pcm, err := p.Prepare(ctx, msg)
	if err != nil {
		t.Fatalf("Prepare(%q): %v", msg, err)
	}
	return pcm
}

func TestPrepareEnglishSpeech(t *testing.T) {
	needEspeak(t)
	p := newTestPrompter(t, Options{})
	const text = "Thank you for calling. Please hold while we connect you to the next available agent."
	pcm := prepare(t, p, text)
	d := audio.Duration(len(pcm))
	// 15 words at 150 wpm is about 6 s; espeak adds pauses at punctuation.
	if d < 3*time.Second || d > 10*time.Second {
		t.Errorf("duration %v, want 3..10 s", d)
	}
	if rms := audio.RMS(pcm); rms < 500 {
		t.Errorf("RMS %.0f: too quiet", rms)
	}
	// At 8 kHz, speech energy sits mostly below 4 kHz, and the resampler removed anything
	// above: check the signal is not 22 kHz data mislabelled (its duration would be 2.75x).
	raw := espeakRaw(t, "en-us+f3", text)
	want := time.Duration(len(raw)) * time.Second / 22050
	if diff := d - want; diff < -50*time.Millisecond || diff > 50*time.Millisecond {
		t.Errorf("duration %v, espeak's own output is %v", d, want)
	}
}

// espeakRaw runs espeak-ng directly (22 050 Hz output) with the settings synthesize uses.
func espeakRaw(t testing.TB, v, text string) []int16 {
	t.Helper()
	cmd := exec.Command("espeak-ng", "--stdout", "-b", "1", "-s", "150", "-v", v)
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pcm, info, err := audio.DecodeWAV(out)
	if err != nil || info.Rate != 22050 {
		t.Fatalf("espeak output: %+v %v", info, err)
	}
	return pcm
}

func TestPrepareEmptyAndWhitespace(t *testing.T) {
	p := newTestPrompter(t, Options{Espeak: "/nonexistent/espeak"})
	for _, msg := range []string{"", "   ", "\n\t", "<speech> </speech>"} {
		pcm, err := p.Prepare(context.Background(), msg)
		if err != nil || pcm == nil || len(pcm) != 0 {
			t.Errorf("Prepare(%q) = %d samples, %v; want empty, nil", msg, len(pcm), err)
		}
	}
}

func TestPrepareCacheHit(t *testing.T) {
	espeak, runs := countingEspeak(t)
	dir := t.TempDir()
	p := newTestPrompter(t, Options{Espeak: espeak, CacheDir: dir})
	const text = "Your call is important to us."
	start := time.Now()
	first := prepare(t, p, text)
	cold := time.Since(start)
	start = time.Now()
	second := prepare(t, p, text)
	warm := time.Since(start)
	if !equal16(first, second) {
		t.Fatal("cached audio differs")
	}
	if runs() != 1 {
		t.Fatalf("espeak ran %d times, want 1", runs())
	}
	if warm*5 > cold {
		t.Errorf("cache hit took %v, synthesis %v: want much faster", warm, cold)
	}
	// A cache hit hands out the cached audio itself (read-only), not a copy per call.
	if third := prepare(t, p, text); len(third) == 0 || &third[0] != &second[0] {
		t.Fatal("a cache hit copied the audio")
	}

	// A new Prompter on the same directory reads the disk cache without running espeak.
	p2 := newTestPrompter(t, Options{Espeak: espeak, CacheDir: dir})
	if again := prepare(t, p2, text); !equal16(first, again) {
		t.Fatal("disk-cached audio differs")
	}
	if runs() != 1 {
		t.Fatalf("espeak ran %d times after a restart, want 1 (disk cache)", runs())
	}
	// Another voice of the same text is another entry.
	prepare(t, p2, `<speech gender="male">`+text+`</speech>`)
	if runs() != 2 {
		t.Fatalf("espeak ran %d times, want 2", runs())
	}
}

func TestPrepareConcurrentSynthesizesOnce(t *testing.T) {
	espeak, runs := countingEspeak(t)
	p := newTestPrompter(t, Options{Espeak: espeak})
	const text = "Please enter your account number followed by the hash key."
	var wg sync.WaitGroup
	results := make([][]int16, 8)
	for i := range results {
		wg.Go(func() { results[i] = prepare(t, p, text) })
	}
	wg.Wait()
	for i := range results {
		if !equal16(results[0], results[i]) {
			t.Fatalf("result %d differs", i)
		}
	}
	if runs() != 1 {
		t.Fatalf("espeak ran %d times for 8 concurrent identical requests, want 1", runs())
	}
}

func TestPrepareSynthesisFailure(t *testing.T) {
	needEspeak(t)
	tests := []struct {
		name, espeak, msg string
	}{
		{"missing program", "/nonexistent/espeak-ng", "hello"},
		{"program fails", "false", "hello"},
		{"no audio (unknown voice)", "voiceless", "hello"},
		{"silent output", "silent", "hello"},
	}
	dir := t.TempDir()
	real, _ := exec.LookPath("espeak-ng")
	scripts := map[string]string{
		"voiceless": fmt.Sprintf("#!/bin/sh\nexec %q \"$@\" -v zzzzq\n", real),
		"silent":    fmt.Sprintf("#!/bin/sh\nexec %q \"$@\" -a 0\n", real),
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			espeak := tc.espeak
			if _, ok := scripts[espeak]; ok {
				espeak = filepath.Join(dir, espeak)
			}
			p := newTestPrompter(t, Options{Espeak: espeak})
			_, err := p.Prepare(context.Background(), tc.msg)
			if StatusOf(err) != StatusCannotConvertText {
				t.Fatalf("err = %v, want %s", err, StatusCannotConvertText)
			}
		})
	}
}

func TestPrepareBudgetSynthesis(t *testing.T) {
	dir := t.TempDir()
	slow := filepath.Join(dir, "slow-espeak")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nsleep 5\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := newTestPrompter(t, Options{Espeak: slow, PrepareBudget: 200 * time.Millisecond, SynthTimeout: time.Second})
	start := time.Now()
	_, err := p.Prepare(context.Background(), "hello")
	if StatusOf(err) != StatusCannotConvertText {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Prepare took %v with a 200 ms budget", el)
	}
}

func equal16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
