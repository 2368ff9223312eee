// Package audiotest decodes audio with real external decoders (ffmpeg, mpg123) for tests across
// ivrd: what a user's player would make of our MP3s.
package audiotest

import (
	"bytes"
	"context"
	"encoding/binary"
	"os/exec"
	"strconv"
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

// FFmpegStereoArgs decode the input (a path, or "pipe:0") to 8 kHz stereo s16le on stdout,
// left and right interleaved (ffmpeg upmixes a mono input: Stereo checks the stream first).
func FFmpegStereoArgs(input string) []string {
	return []string{"-v", "error", "-i", input, "-f", "s16le", "-ac", "2", "-ar", "8000", "pipe:1"}
}

// Stereo decodes an MP3 with ffmpeg into its left and right channels at 8 kHz, and fails the
// test unless ffprobe reports the stream as two channels (a mono file upmixed by ffmpeg would
// otherwise pass for stereo).
func Stereo(t testing.TB, mp3 []byte) (left, right []int16) {
	t.Helper()
	if got := Channels(t, mp3); got != 2 {
		t.Fatalf("the MP3 has %d channel(s), want 2", got)
	}
	return Deinterleave(Run(t, mp3, "ffmpeg", FFmpegStereoArgs("pipe:0")...))
}

// Channels is the number of channels ffprobe finds in the MP3's audio stream.
func Channels(t testing.TB, mp3 []byte) int {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatalf("ffprobe not installed (scripts/install-deps.sh installs ffmpeg): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=channels",
		"-of", "default=noprint_wrappers=1:nokey=1", "pipe:0")
	cmd.Stdin = bytes.NewReader(mp3)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ffprobe channels %q: %v", out, err)
	}
	return n
}

// Deinterleave splits interleaved stereo samples into left and right.
func Deinterleave(pcm []int16) (left, right []int16) {
	left, right = make([]int16, len(pcm)/2), make([]int16, len(pcm)/2)
	for i := range left {
		left[i], right[i] = pcm[2*i], pcm[2*i+1]
	}
	return left, right
}
