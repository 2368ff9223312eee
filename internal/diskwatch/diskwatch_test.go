package diskwatch

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testfs"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	if p := probe(dir, DefaultMinFree); p != "" {
		t.Fatalf("fresh directory: %q", p)
	}
	if p := probe(dir, 1<<62); !strings.Contains(p, "data directory full") {
		t.Fatalf("more free space needed than the disk has: %q", p)
	}
	if p := probe(dir+"/missing", DefaultMinFree); p == "" {
		t.Fatal("missing directory reported writable")
	}
	if _, err := New(Config{Dir: dir + "/missing", Log: quiet()}); err == nil {
		t.Fatal("New on a missing directory")
	}
}

// A real full file system is seen at once on Check and by the periodic probe, and the
// watcher recovers by itself once space is freed.
func TestFullFileSystem(t *testing.T) {
	dir := testfs.Tmpfs(t, "8m")
	w, err := New(Config{Dir: dir, Interval: time.Hour, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if p := w.Problem(); p != "" {
		t.Fatalf("empty tmpfs: %q", p)
	}
	free := testfs.Fill(t, dir)
	w.Check(nil) // a write failed somewhere: probe now, not in an hour
	deadline := time.Now().Add(2 * time.Second)
	for w.Problem() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := w.Problem(); !strings.Contains(p, "data directory full") {
		t.Fatalf("full tmpfs: problem %q", p)
	}
	free()
	if p := w.Probe(); p != "" {
		t.Fatalf("after freeing: %q", p)
	}

	// The periodic probe finds it too.
	w2, err := New(Config{Dir: dir, Interval: 20 * time.Millisecond, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	free = testfs.Fill(t, dir)
	deadline = time.Now().Add(2 * time.Second)
	for w2.Problem() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if w2.Problem() == "" {
		t.Fatal("periodic probe did not see the full tmpfs")
	}
	free()
	deadline = time.Now().Add(2 * time.Second)
	for w2.Problem() != "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := w2.Problem(); p != "" {
		t.Fatalf("periodic probe after freeing: %q", p)
	}
}
