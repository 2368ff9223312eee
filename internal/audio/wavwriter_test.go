package audio

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWAVWriter: a streamed file reads back as the samples written, silence included, with
// the sizes in its header right.
func TestWAVWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWAVWriter(f, Rate)
	if err != nil {
		t.Fatal(err)
	}
	tone := SineWave(1000, 300*time.Millisecond, 8000)
	if err := w.Write(tone); err != nil {
		t.Fatal(err)
	}
	if err := w.Silence(1234); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(tone[:10]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pcm, info, err := DecodeWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	want := len(tone) + 1234 + 10
	if info.Rate != Rate || info.Channels != 1 || len(pcm) != want || int64(len(b)) != w.Size() || w.Samples() != int64(want) {
		t.Fatalf("read back %d samples %+v, file %d bytes (Size %d)", len(pcm), info, len(b), w.Size())
	}
	for i, s := range tone {
		if pcm[i] != s {
			t.Fatalf("sample %d: %d, want %d", i, pcm[i], s)
		}
	}
	if riff, data := binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[40:]); riff != uint32(len(b)-8) || data != uint32(2*want) {
		t.Fatalf("header sizes: RIFF %d, data %d (file %d bytes)", riff, data, len(b))
	}
	if RMS(pcm[len(tone):len(tone)+1234]) != 0 || pcm[want-1] != tone[9] {
		t.Fatal("silence or the tail read back wrong")
	}
}
