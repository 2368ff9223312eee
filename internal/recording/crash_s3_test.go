package recording

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/tests3"
)

// s3CrashEnv names the directory the S3 child records into; set only in the child.
const s3CrashEnv = "IVRD_RECORDING_S3_CRASH_CHILD_DIR"

// TestS3CrashChild is the node that dies: it records a 1 kHz caller tone in real time in an
// Archive uploading pieces to the parent's S3 server, until it is SIGKILLed. It does nothing
// in a normal test run.
func TestS3CrashChild(t *testing.T) {
	dir := os.Getenv(s3CrashEnv)
	srv := tests3.FromEnv()
	if dir == "" || srv == nil {
		t.Skip("only runs as the child of TestRecoverFromPiecesAfterSIGKILL")
	}
	a := s3Archive(t, dir, s3Store(t, srv), nil)
	start := time.Now()
	take, err := a.Start(info("crash", KindMonitor, start, Mono))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("recording started")
	feedTone(take.Recording, start, 30*time.Second)
	t.Fatal("was not killed")
}

// TestRecoverFromPiecesAfterSIGKILL: a node recording a call is killed 9.5 s in; another node
// (an Archive over an empty directory: no file of the call) recovers the recording from the
// pieces in the store, knowing only its id. The result is a valid MP3 (ffmpeg) of the tone up
// to at most 5 s before the kill, the exact start of the dead node's file, stored whole with
// its pieces deleted.
func TestRecoverFromPiecesAfterSIGKILL(t *testing.T) {
	if os.Getenv(s3CrashEnv) != "" {
		t.Skip("in the child")
	}
	srv := tests3.Start(t)
	deadDir := t.TempDir()
	tStart, tKill := killChild(t, "TestS3CrashChild", append([]string{s3CrashEnv + "=" + deadDir}, srv.Env()...), 9500*time.Millisecond)
	killedAt := tKill.Sub(tStart)
	pieces, _ := srv.Objects("pieces/crash.mp3/")
	if len(pieces) < 2 {
		t.Fatalf("%d pieces uploaded in %v", len(pieces), killedAt)
	}
	deadFile, err := os.ReadFile(filepath.Join(deadDir, "crash"+PartSuffix))
	if err != nil {
		t.Fatalf("the dead node's file: %v", err)
	}

	// Another node: nothing of the call on its disk.
	s := s3Store(t, srv)
	otherDir := t.TempDir()
	a := s3Archive(t, otherDir, s, nil)
	u, length, err := a.Recover(info("crash", KindMonitor, time.Time{}, 0))
	if err != nil || u == "" {
		t.Fatalf("Recover: %q %v %v", u, length, err)
	}
	if !strings.Contains(u, "/recordings/crash.mp3?") {
		t.Fatalf("URL %s", u)
	}
	mp3 := fetch(t, s, "crash.mp3")
	// CBR 32 kbit/s at 8 kHz: 288-byte frames; cut at the last whole one the pieces held.
	if len(mp3)%288 != 0 || !bytes.HasPrefix(deadFile, mp3) {
		t.Fatalf("recovered %d bytes: not a whole-frame prefix of the dead node's %d", len(mp3), len(deadFile))
	}
	pcm := decodeFFmpeg(t, mp3)
	got := audio.Duration(len(pcm))
	t.Logf("killed %v into the call: %d pieces, recovered %v (%d bytes, Recover says %v); the dead node's file had %d bytes",
		killedAt, len(pieces), got, len(mp3), length, len(deadFile))
	if got < killedAt-5*time.Second || got > killedAt || !near(got, length, 10*time.Millisecond) {
		t.Fatalf("recovered %v of a call killed at %v (Recover says %v): want at least all but the last 5 s", got, killedAt, length)
	}
	spans := audio.ToneSpans(pcm, audio.Rate, 1000, 20*time.Millisecond, 0.5)
	if len(spans) == 0 || spans[0].Start > 300*time.Millisecond || spans[len(spans)-1].End < got-200*time.Millisecond ||
		toneCover(pcm) < got*9/10 {
		t.Fatalf("tone at %v, want it from ≤ 0.3 s to the end (%v)", spans, got)
	}
	if left, _ := srv.Objects("pieces/"); len(left) != 0 {
		t.Fatalf("pieces left: %v", left)
	}
	if ents, _ := os.ReadDir(otherDir); len(ents) != 0 {
		t.Fatalf("left in the recovering node's directory: %v", ents)
	}
	// Recovering again (a second node, a retry) signs the stored recording.
	if u2, l2, err := a.Recover(info("crash", KindMonitor, time.Time{}, 0)); err != nil || u2 == "" || l2 != length {
		t.Fatalf("second Recover: %q %v %v", u2, l2, err)
	}
}
