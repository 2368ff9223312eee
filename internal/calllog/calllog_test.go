package calllog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ivrd/ivrd/internal/testlog"
)

// lines decodes the JSON lines logged into b.
func lines(t *testing.T, b *testlog.Buffer) []map[string]any {
	t.Helper()
	out, err := testlog.Lines(b.String())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Lines carry the session from the moment it is set, through loggers derived before and after.
func TestTag(t *testing.T) {
	var tag Tag
	log, b := testlog.NewJSON()
	base := log.With("call_id", "c1")
	l := tag.Logger(base)
	early := l.With("dir", "in")
	l.Info("before")
	tag.Set("S1")
	l.Info("after", "k", 1)
	early.Info("derived before")
	l.With("x", 2).Info("derived after")
	l.WithGroup("g").Info("grouped", "y", 3)

	got := lines(t, b)
	cases := []struct {
		msg     string
		session any // nil: none
		attrs   map[string]any
	}{
		{"before", nil, map[string]any{"call_id": "c1"}},
		{"after", "S1", map[string]any{"call_id": "c1", "k": 1.0}},
		{"derived before", "S1", map[string]any{"call_id": "c1", "dir": "in"}},
		{"derived after", "S1", map[string]any{"call_id": "c1", "x": 2.0}},
	}
	if len(got) != len(cases)+1 {
		t.Fatalf("%d lines: %v", len(got), got)
	}
	for i, c := range cases {
		g := got[i]
		if g["msg"] != c.msg || g[Key] != c.session {
			t.Errorf("line %d: %v, want msg %q session %v", i, g, c.msg, c.session)
		}
		for k, v := range c.attrs {
			if g[k] != v {
				t.Errorf("line %d %q: %v = %v, want %v", i, c.msg, k, g[k], v)
			}
		}
	}
	if g, ok := got[len(cases)]["g"].(map[string]any); !ok || g[Key] != "S1" || g["y"] != 3.0 {
		t.Errorf("grouped line: %v", got[len(cases)])
	}
	if tag.Session() != "S1" {
		t.Errorf("Session() = %q", tag.Session())
	}
}

// The level of the logger beneath is kept; setting the session while lines are logged is safe.
func TestTagConcurrent(t *testing.T) {
	var b testlog.Buffer
	var tag Tag
	l := tag.Logger(slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Debug("not logged")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				l.Info("line")
			}
		})
	}
	tag.Set("S2")
	wg.Wait()
	l.Info("last")
	out := b.String()
	if strings.Contains(out, "not logged") {
		t.Error("a debug line got through an info logger")
	}
	if !strings.HasSuffix(strings.TrimSpace(out), `"msg":"last","session":"S2"}`) {
		t.Errorf("last line: %q", out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	}
}

func TestContext(t *testing.T) {
	if s := Session(context.Background()); s != "" {
		t.Errorf("empty context names %q", s)
	}
	if s := Session(WithSession(context.Background(), "S3")); s != "S3" {
		t.Errorf("Session = %q", s)
	}
}
