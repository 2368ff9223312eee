package main

import (
	"bytes"
	"os/exec"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

func encode(t *testing.T, pcm []int16) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := audio.NewMP3Encoder(&buf, 32)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Write(pcm); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckMP3(t *testing.T) {
	// The caller's tone with a louder "prompt" (440 Hz) mixed in over half of it.
	pcm := audio.SineWave(toneHz, 6*time.Second, toneAmp)
	audio.MixInto(pcm[:len(pcm)/2], audio.SineWave(440, 3*time.Second, 9000))
	mp3 := encode(t, pcm)
	if c := checkMP3(mp3, 6*time.Second); !c.ok || c.coverage < 0.95 {
		t.Fatalf("good recording rejected: %+v", c)
	}
	if c := checkMP3(mp3, 10*time.Second); c.ok {
		t.Fatal("a recording 4 s short passed")
	}
	if c := checkMP3(mp3[:len(mp3)-50], 0); c.ok {
		t.Fatal("a truncated recording passed")
	}
	if c := checkMP3(append([]byte{0, 1, 2}, mp3...), 0); c.ok {
		t.Fatal("a recording with leading garbage passed")
	}
	silent := encode(t, make([]int16, 6*audio.Rate))
	if c := checkMP3(silent, 0); c.ok {
		t.Fatal("a recording without the caller's tone passed")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	if err := ffmpegClean(mp3); err != nil {
		t.Fatal(err)
	}
	if err := ffmpegClean(mp3[:len(mp3)/2+7]); err == nil {
		t.Fatal("ffmpeg took a truncated file without complaint")
	}
}
