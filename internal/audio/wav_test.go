package audio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// wavTool runs an external tool (sox, espeak-ng) with a time bound, skipping the test if absent.
func wavTool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, stderr.String())
	}
	return out
}

// wavSox makes a one-second 1 kHz sine file with sox using the given output options.
func wavSox(t *testing.T, ext string, opts ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f."+ext)
	args := append([]string{"-n"}, opts...)
	args = append(args, path, "synth", "1", "sine", "1000", "vol", "0.5")
	wavTool(t, "sox", args...)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeWAVFormats(t *testing.T) {
	tests := []struct {
		name     string
		opts     []string
		format   int
		rate     int
		channels int
		minLevel float64
	}{
		{"16-bit 8k mono", []string{"-r", "8000", "-c", "1", "-b", "16"}, WAVFormatPCM, 8000, 1, 0.95},
		{"8-bit unsigned 8k", []string{"-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned"}, WAVFormatPCM, 8000, 1, 0.95},
		{"24-bit 44.1k stereo", []string{"-r", "44100", "-c", "2", "-b", "24"}, WAVFormatExtensible, 44100, 2, 0.95},
		{"32-bit 16k", []string{"-r", "16000", "-c", "1", "-b", "32"}, WAVFormatPCM, 16000, 1, 0.95},
		{"float 22.05k", []string{"-r", "22050", "-c", "1", "-e", "float", "-b", "32"}, WAVFormatFloat, 22050, 1, 0.95},
		{"mu-law 8k", []string{"-r", "8000", "-c", "1", "-e", "mu-law"}, WAVFormatMuLaw, 8000, 1, 0.95},
		{"A-law 8k", []string{"-r", "8000", "-c", "1", "-e", "a-law"}, WAVFormatALaw, 8000, 1, 0.95},
		{"A-law stereo 11k", []string{"-r", "11025", "-c", "2", "-e", "a-law"}, WAVFormatALaw, 11025, 2, 0.95},
		{"GSM 6.10 in WAV", []string{"-r", "8000", "-c", "1", "-e", "gsm-full-rate"}, WAVFormatGSM610, 8000, 1, 0.8},
		{"6 channels 48k", []string{"-r", "48000", "-c", "6", "-b", "16"}, WAVFormatExtensible, 48000, 6, 0.95},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := wavSox(t, "wav", tc.opts...)
			pcm, info, err := DecodeWAV(b)
			if err != nil {
				t.Fatal(err)
			}
			if tc.format != WAVFormatExtensible && info.Format != tc.format {
				t.Errorf("format = %#x, want %#x", info.Format, tc.format)
			}
			if info.Rate != tc.rate || info.Channels != tc.channels {
				t.Errorf("info = %+v, want rate %d channels %d", info, tc.rate, tc.channels)
			}
			if d := len(pcm) - tc.rate; d < -400 || d > 400 {
				t.Errorf("%d samples, want about %d", len(pcm), tc.rate)
			}
			mid := pcm[len(pcm)/10 : len(pcm)*9/10]
			if lvl := ToneLevel(mid, info.Rate, 1000); lvl < tc.minLevel {
				t.Errorf("1 kHz level %.3f, want >= %.2f", lvl, tc.minLevel)
			}
			if rms := RMS(mid); rms < 0.5*16384/1.414*0.9 || rms > 0.5*32768/1.414*1.1 {
				t.Errorf("RMS %.0f, want about %.0f", rms, 0.5*32768/1.414)
			}
		})
	}
}

func TestDecodeWAVEspeakStreaming(t *testing.T) {
	b := wavTool(t, "espeak-ng", "--stdout", "-v", "en", "Testing one two three.")
	if got := binary.LittleEndian.Uint32(b[4:]); got != 0x7ffff000 {
		t.Logf("espeak RIFF size %#x (expected the streaming placeholder)", got)
	}
	pcm, info, err := DecodeWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	if info.Rate != 22050 || info.Channels != 1 || info.Bits != 16 {
		t.Fatalf("info = %+v", info)
	}
	if len(pcm) != (len(b)-44)/2 {
		t.Errorf("%d samples from %d bytes", len(pcm), len(b))
	}
	if d := time.Duration(len(pcm)) * time.Second / 22050; d < 700*time.Millisecond || d > 4*time.Second {
		t.Errorf("duration %v", d)
	}
	if RMS(pcm) < 300 {
		t.Errorf("RMS %.0f: silent", RMS(pcm))
	}
}

func TestEncodeDecodeWAVRoundTrip(t *testing.T) {
	in := SineWave(440, 300*time.Millisecond, 12000)
	pcm, info, err := DecodeWAV(EncodeWAV(in, Rate))
	if err != nil {
		t.Fatal(err)
	}
	if info.Rate != Rate || info.Channels != 1 || info.Format != WAVFormatPCM || !slicesEqual16(pcm, in) {
		t.Fatalf("round trip changed the audio: %+v", info)
	}
	// sox must read what we write.
	path := filepath.Join(t.TempDir(), "x.wav")
	if err := os.WriteFile(path, EncodeWAV(in, Rate), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := wavTool(t, "sox", path, "-t", "raw", "-e", "signed", "-b", "16", "-")
	if len(raw) != 2*len(in) || int16(binary.LittleEndian.Uint16(raw[200:])) != in[100] {
		t.Fatal("sox reads different samples")
	}
}

func slicesEqual16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// wavHeader builds a WAVE file with a hand-made fmt chunk and data.
func wavHeader(format, channels, rate, bits int, extra []byte, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF\x00\x00\x00\x00WAVE")
	b.WriteString("fmt ")
	binary.Write(&b, binary.LittleEndian, uint32(16+len(extra)))
	binary.Write(&b, binary.LittleEndian, uint16(format))
	binary.Write(&b, binary.LittleEndian, uint16(channels))
	binary.Write(&b, binary.LittleEndian, uint32(rate))
	binary.Write(&b, binary.LittleEndian, uint32(rate*channels*bits/8))
	binary.Write(&b, binary.LittleEndian, uint16(channels*bits/8))
	binary.Write(&b, binary.LittleEndian, uint16(bits))
	b.Write(extra)
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func TestDecodeWAVRejects(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotWAV},
		{"html", []byte("<!DOCTYPE html><html><body>not found</body></html>"), ErrNotWAV},
		{"riff but avi", []byte("RIFF\x00\x00\x00\x00AVI LIST"), ErrNotWAV},
		{"no fmt", []byte("RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00abcd"), ErrWAVUnsupported},
		{"no data", wavHeader(1, 1, 8000, 16, nil, nil)[:36], ErrWAVUnsupported},
		{"adpcm", wavHeader(2, 1, 8000, 4, nil, []byte{1, 2}), ErrWAVUnsupported},
		{"12-bit pcm", wavHeader(1, 1, 8000, 12, nil, []byte{1, 2}), ErrWAVUnsupported},
		{"0 channels", wavHeader(1, 0, 8000, 16, nil, []byte{1, 2}), ErrWAVUnsupported},
		{"rate 0", wavHeader(1, 1, 0, 16, nil, []byte{1, 2}), ErrWAVUnsupported},
		{"16-bit mu-law", wavHeader(7, 1, 8000, 16, nil, []byte{1, 2}), ErrWAVUnsupported},
		{"short extensible", wavHeader(0xFFFE, 1, 8000, 16, []byte{0, 0}, []byte{1, 2}), ErrWAVUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := DecodeWAV(tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeWAVOddChunksAndTruncation(t *testing.T) {
	data := make([]byte, 0, 8)
	for _, s := range []int16{100, -200, 300, -400} {
		data = binary.LittleEndian.AppendUint16(data, uint16(s))
	}
	f := wavHeader(1, 1, 8000, 16, nil, data)
	// Insert an odd-sized LIST chunk (padded to even) between fmt and data.
	withList := append([]byte{}, f[:36]...)
	withList = append(withList, "LIST\x03\x00\x00\x00abc\x00"...)
	withList = append(withList, f[36:]...)
	// Streaming sizes: data chunk claims far more than is there; trailing odd byte.
	stream := append([]byte{}, f...)
	binary.LittleEndian.PutUint32(stream[40:], 0xffffffff)
	stream = append(stream, 0x7f)
	for name, b := range map[string][]byte{"plain": f, "list chunk": withList, "streaming": stream} {
		pcm, _, err := DecodeWAV(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slicesEqual16(pcm, []int16{100, -200, 300, -400}) {
			t.Fatalf("%s: pcm = %v", name, pcm)
		}
	}
	// Stereo 24-bit: channels average, the low byte is dropped.
	d24 := []byte{0xff, 0x00, 0x10, 0xff, 0x00, 0x30} // L=0x1000, R=0x3000
	pcm, _, err := DecodeWAV(wavHeader(1, 2, 8000, 24, nil, d24))
	if err != nil || len(pcm) != 1 || pcm[0] != 0x2000 {
		t.Fatalf("24-bit stereo: %v %v", pcm, err)
	}
}

func FuzzDecodeWAV(f *testing.F) {
	f.Add(EncodeWAV([]int16{1, 2, 3}, 8000))
	f.Add(wavHeader(7, 2, 8000, 8, nil, []byte{1, 2, 3, 4}))
	f.Add(wavHeader(3, 1, 8000, 64, nil, make([]byte, 16)))
	f.Add(wavHeader(0x31, 1, 8000, 0, []byte{2, 0, 64, 1}, make([]byte, 130)))
	f.Add(wavHeader(0xFFFE, 1, 8000, 16, make([]byte, 24), []byte{1, 2}))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, info, err := DecodeWAV(b)
		if err != nil {
			return
		}
		if info.Rate < 1 || info.Channels < 1 {
			t.Fatalf("accepted %+v", info)
		}
		if len(pcm) > len(b)*GSMFrameSamples {
			t.Fatalf("%d samples from %d bytes", len(pcm), len(b))
		}
	})
}
