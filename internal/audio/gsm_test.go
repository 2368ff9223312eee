package audio

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDecodeGSMBitExactWithSox(t *testing.T) {
	gsm := wavSox(t, "gsm", "-r", "8000", "-c", "1")
	if len(gsm)%GSMFrameBytes != 0 {
		t.Fatalf("sox wrote %d bytes", len(gsm))
	}
	pcm, err := DecodeGSM(gsm)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) != len(gsm)/GSMFrameBytes*GSMFrameSamples {
		t.Fatalf("%d samples from %d bytes", len(pcm), len(gsm))
	}
	path := filepath.Join(t.TempDir(), "in.gsm")
	if err := os.WriteFile(path, gsm, 0o600); err != nil {
		t.Fatal(err)
	}
	raw := wavTool(t, "sox", path, "-t", "raw", "-e", "signed", "-b", "16", "-")
	if len(raw) != 2*len(pcm) {
		t.Fatalf("sox decoded %d samples, we %d", len(raw)/2, len(pcm))
	}
	for i := range pcm {
		if ref := int16(binary.LittleEndian.Uint16(raw[2*i:])); ref != pcm[i] {
			t.Fatalf("sample %d = %d, sox says %d", i, pcm[i], ref)
		}
	}
	if lvl := ToneLevel(pcm[800:7200], 8000, 1000); lvl < 0.8 {
		t.Errorf("1 kHz level %.2f after GSM", lvl)
	}
	// A trailing partial frame is ignored.
	if p2, err := DecodeGSM(append(gsm, 0xd0, 1, 2)); err != nil || len(p2) != len(pcm) {
		t.Errorf("trailing bytes: %d samples, %v", len(p2), err)
	}
}

func TestDecodeGSMRejects(t *testing.T) {
	good := make([]byte, GSMFrameBytes)
	good[0] = 0xD0
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short", good[:20]},
		{"html", []byte("<html><head><title>404 Not Found</title></head><body>nope</body></html>")},
		{"mp3 id3", append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), make([]byte, 60)...)},
		{"second frame bad", append(append([]byte{}, good...), make([]byte, GSMFrameBytes)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeGSM(tc.data); !errors.Is(err, ErrNotGSM) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if pcm, err := DecodeGSM(good); err != nil || len(pcm) != GSMFrameSamples {
		t.Fatalf("minimal frame: %d %v", len(pcm), err)
	}
}

func FuzzDecodeGSM(f *testing.F) {
	frame := make([]byte, GSMFrameBytes)
	frame[0] = 0xD3
	f.Add(frame)
	f.Add(append(append([]byte{}, frame...), 0xDF, 0xFF))
	f.Add([]byte("<html>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, err := DecodeGSM(b)
		if err != nil {
			return
		}
		if len(pcm) != len(b)/GSMFrameBytes*GSMFrameSamples {
			t.Fatalf("%d samples from %d bytes", len(pcm), len(b))
		}
	})
}
