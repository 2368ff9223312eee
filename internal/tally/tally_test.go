package tally

import (
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testlog"
)

func TestTally(t *testing.T) {
	log, out := testlog.New()
	tl := New(log, 50*time.Millisecond, "refused", "app")
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
