package tally

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type buf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buf) Write(p []byte) (int, error) { b.mu.Lock(); defer b.mu.Unlock(); return b.b.Write(p) }
func (b *buf) String() string              { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

func TestTally(t *testing.T) {
	var out buf
	tl := New(slog.New(slog.NewTextHandler(&out, nil)), 50*time.Millisecond, "refused", "app")
	for range 1000 {
		tl.Add("A1")
	}
	tl.Add("A2")
	time.Sleep(120 * time.Millisecond) // one period's line, then an empty period: no line
	tl.Add("A1")
	tl.Close()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"app=A1 count=1000", "app=A2 count=1", "app=A1 count=1"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], "msg=refused "+w+" ") {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
}
