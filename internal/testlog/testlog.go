// Package testlog captures what code under test logs, for tests to check.
package testlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Buffer collects log output; it is safe for loggers used from several goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything logged so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// New returns a text logger (debug level and up) and the buffer it writes to.
func New() (*slog.Logger, *Buffer) {
	b := &Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// NewJSON returns a JSON logger (debug level and up) and the buffer it writes to.
func NewJSON() (*slog.Logger, *Buffer) {
	b := &Buffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// Lines decodes JSON log output, one object a line; a line that is not JSON is an error.
func Lines(text string) ([]map[string]any, error) {
	var out []map[string]any
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			return out, fmt.Errorf("log line %q: %w", l, err)
		}
		out = append(out, m)
	}
	return out, nil
}
