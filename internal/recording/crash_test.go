package recording

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// crashEnv names the directory the child process records into; set only in the child.
const crashEnv = "IVRD_RECORDING_CRASH_CHILD_DIR"

// TestCrashChild is the process that gets killed: it records a 1 kHz caller tone in real
// time until it is SIGKILLed (or 20 s pass). It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestRecoverAfterSIGKILL")
	}
	r, err := NewRecorder(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec, err := r.Start("crash", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("recording started")
	feedTone(rec, start, 20*time.Second)
	t.Fatal("was not killed")
}

// TestRecoverAfterSIGKILL kills a recording process 2.5 s into a call and checks that
// RecoverAll turns its .part into a clean MP3 holding the call up to about the last second.
func TestRecoverAfterSIGKILL(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	killChild(t, "TestCrashChild", []string{crashEnv + "=" + dir}, 2500*time.Millisecond)

	// The next start of ivrd: a fresh Recorder over the same directory.
	r, err := NewRecorder(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	part := r.PartPath("crash")
	fi, err := os.Stat(part)
	if err != nil {
		t.Fatalf("no .part left by the killed process: %v", err)
	}
	ids, err := r.Pending()
	if err != nil || len(ids) != 1 || ids[0] != "crash" {
		t.Fatalf("Pending = %v, %v", ids, err)
	}
	results, err := r.RecoverAll()
	if err != nil {
		t.Fatal(err)
	}
	res := results["crash"]
	if res.Path != filepath.Join(dir, "crash.mp3") {
		t.Fatalf("recovered to %q", res.Path)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatalf(".part still there after Recover: %v", err)
	}
	// CBR 32 kbit/s at 8 kHz: every frame is 288 bytes, so a cut at a frame boundary is a
	// multiple of 288.
	if res.Bytes%288 != 0 || res.Bytes > fi.Size() || res.Bytes < fi.Size()-288 {
		t.Fatalf("recovered %d bytes of %d: not cut at the last whole frame", res.Bytes, fi.Size())
	}
	t.Logf("killed at 2.5 s: .part %d bytes, recovered %v (%d bytes)", fi.Size(), res.Duration, res.Bytes)
	if res.Duration < 1500*time.Millisecond || res.Duration > 2600*time.Millisecond {
		t.Fatalf("recovered %v of a 2.5 s call", res.Duration)
	}
	for name, pcm := range decodeAll(t, res.Path) {
		if d := audio.Duration(len(pcm)); !near(d, res.Duration, 10*time.Millisecond) {
			t.Errorf("%s decodes %v, Result says %v", name, d, res.Duration)
		}
		// The tone from the start (less the MP3 pre-roll) to at least 1.5 s. A stall of the
		// child longer than the mixer lag (a loaded machine, -race) can leave a short hole.
		spans := audio.ToneSpans(pcm, audio.Rate, 1000, 20*time.Millisecond, 0.5)
		var heard time.Duration
		for _, s := range spans {
			heard += s.Len()
		}
		if len(spans) == 0 || spans[0].Start > 300*time.Millisecond || spans[len(spans)-1].End < 1500*time.Millisecond ||
			heard < (spans[len(spans)-1].End-spans[0].Start)*9/10 {
			t.Errorf("%s: tone at %v, want it from ≤ 0.3 s to ≥ 1.5 s", name, spans)
		}
	}
	if ids, _ := r.Pending(); len(ids) != 0 {
		t.Fatalf("still pending after RecoverAll: %v", ids)
	}
}
