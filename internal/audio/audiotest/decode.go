// Package audiotest decodes audio with real external decoders (ffmpeg, mpg123) for tests across
// ivrd: what a user's player would make of our MP3s.
package audiotest

import (
	"bytes"
	"context"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Run runs an external decoder that writes s16le PCM to stdout, feeding it stdin (may be nil).
// Anything on stderr (a decode error or warning) fails the test, as does a missing program.
func Run(t testing.TB, stdin []byte, name string, args ...string) []int16 {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not installed (scripts/install-deps.sh installs it): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
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

// FFmpegArgs decode the input (a path, or "pipe:0") to 8 kHz mono s16le on stdout.
func FFmpegArgs(input string) []string {
	return []string{"-v", "error", "-i", input, "-f", "s16le", "-ac", "1", "-ar", "8000", "pipe:1"}
}

// Decoders decodes the MP3 file at path with ffmpeg and mpg123, keyed by decoder name.
func Decoders(t testing.TB, path string) map[string][]int16 {
	t.Helper()
	return map[string][]int16{
		"ffmpeg": Run(t, nil, "ffmpeg", FFmpegArgs(path)...),
		"mpg123": Run(t, nil, "mpg123", "-q", "-s", path),
	}
}
