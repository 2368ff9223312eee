package audio

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestDecodeMP3Stereo16k(t *testing.T) {
	// A stereo 16 kHz MPEG-2 file made by ffmpeg, 1 kHz in both channels.
	path := filepath.Join(t.TempDir(), "s.mp3")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-f", "lavfi",
		"-i", "sine=frequency=1000:sample_rate=16000:duration=1", "-ac", "2",
		"-c:a", "libmp3lame", "-b:a", "64k", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pcm, rate, err := DecodeMP3(data)
	if err != nil {
		t.Fatal(err)
	}
	if rate != 16000 {
		t.Fatalf("rate %d, want 16000", rate)
	}
	// Mono samples: about one second (plus codec delay and padding), not two.
	if d := time.Duration(len(pcm)) * time.Second / 16000; d < 950*time.Millisecond || d > 1200*time.Millisecond {
		t.Fatalf("decoded %v, want ≈ 1 s of mono", d)
	}
	mid := pcm[4000:12000]
	if l := ToneLevel(mid, rate, 1000); l < 0.9 {
		t.Fatalf("1 kHz level %.3f after folding to mono", l)
	}
}

func TestDecodeMP3Rejects(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"text", []byte("this is not an mp3 file at all, just some text of moderate length")},
		{"zeros", make([]byte, 4096)},
		{"lone header", []byte{0xFF, 0xE3, 0x48, 0xC4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm, _, err := DecodeMP3(tt.data)
			if !errors.Is(err, ErrNoMP3Frames) || pcm != nil {
				t.Fatalf("got %d samples, err %v; want ErrNoMP3Frames", len(pcm), err)
			}
		})
	}
}

func FuzzDecodeMP3(f *testing.F) {
	var w countingBuffer
	e, err := NewMP3Encoder(&w, 16)
	if err != nil {
		f.Fatal(err)
	}
	if err := e.Write(SineWave(700, 300*time.Millisecond, 9000)); err != nil {
		f.Fatal(err)
	}
	if err := e.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(w.b)
	f.Add(w.b[:len(w.b)/2+7])
	f.Add([]byte{0xFF, 0xE3, 0x48, 0xC4, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		pcm, rate, err := DecodeMP3(data)
		if err == nil && (rate <= 0 || len(pcm) == 0) {
			t.Fatalf("no error but rate %d, %d samples", rate, len(pcm))
		}
	})
}

type countingBuffer struct{ b []byte }

func (c *countingBuffer) Write(p []byte) (int, error) { c.b = append(c.b, p...); return len(p), nil }
