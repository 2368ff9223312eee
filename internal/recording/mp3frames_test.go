package recording

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/ivrd/ivrd/internal/audio/audiotest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

func TestParseFrameHeader(t *testing.T) {
	tests := []struct {
		name string
		hdr  []byte
		want FrameHeader
		bad  bool
	}{
		{"MPEG-2.5 8 kHz 32k mono (ours)", []byte{0xFF, 0xE3, 0x48, 0xC4},
			FrameHeader{Version: MPEG25, Bitrate: 32, SampleRate: 8000, Mono: true, Size: 288, Samples: 576}, false},
		{"MPEG-2.5 8 kHz 16k", []byte{0xFF, 0xE3, 0x28, 0xC4},
			FrameHeader{Version: MPEG25, Bitrate: 16, SampleRate: 8000, Mono: true, Size: 144, Samples: 576}, false},
		{"MPEG-1 44.1 kHz 128k padded stereo, CRC", []byte{0xFF, 0xFA, 0x92, 0x00},
			FrameHeader{Version: MPEG1, Bitrate: 128, SampleRate: 44100, Padding: true, Size: 418, Samples: 1152}, false},
		{"MPEG-1 48 kHz 320k joint stereo", []byte{0xFF, 0xFB, 0xE4, 0x40},
			FrameHeader{Version: MPEG1, Bitrate: 320, SampleRate: 48000, Size: 960, Samples: 1152}, false},
		{"MPEG-2 22.05 kHz 64k", []byte{0xFF, 0xF3, 0x80, 0xC0},
			FrameHeader{Version: MPEG2, Bitrate: 64, SampleRate: 22050, Mono: true, Size: 208, Samples: 576}, false},
		{"MPEG-2 16 kHz 8k padded", []byte{0xFF, 0xF3, 0x1A, 0xC0},
			FrameHeader{Version: MPEG2, Bitrate: 8, SampleRate: 16000, Padding: true, Mono: true, Size: 37, Samples: 576}, false},
		{"MPEG-2.5 8 kHz 64k stereo (ours, dual)", []byte{0xFF, 0xE3, 0x88, 0x04},
			FrameHeader{Version: MPEG25, Bitrate: 64, SampleRate: 8000, Size: 576, Samples: 576}, false},
		{"short", []byte{0xFF, 0xE3, 0x48}, FrameHeader{}, true},
		{"no sync", []byte{0xFE, 0xE3, 0x48, 0xC4}, FrameHeader{}, true},
		{"half sync", []byte{0xFF, 0xC3, 0x48, 0xC4}, FrameHeader{}, true},
		{"reserved version", []byte{0xFF, 0xEB, 0x48, 0xC4}, FrameHeader{}, true},
		{"layer II", []byte{0xFF, 0xE5, 0x48, 0xC4}, FrameHeader{}, true},
		{"layer I", []byte{0xFF, 0xE7, 0x48, 0xC4}, FrameHeader{}, true},
		{"free format", []byte{0xFF, 0xE3, 0x08, 0xC4}, FrameHeader{}, true},
		{"bitrate 15", []byte{0xFF, 0xE3, 0xF8, 0xC4}, FrameHeader{}, true},
		{"reserved rate", []byte{0xFF, 0xE3, 0x4C, 0xC4}, FrameHeader{}, true},
		{"reserved emphasis", []byte{0xFF, 0xE3, 0x48, 0xC6}, FrameHeader{}, true},
		{"ID3v1 tag", []byte("TAG!"), FrameHeader{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFrameHeader(tt.hdr)
			if (err != nil) != tt.bad {
				t.Fatalf("err %v, want bad=%v", err, tt.bad)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestScanFramesMatchesFFmpeg walks files that ffmpeg's own LAME encoder wrote (with and
// without ID3v2 and ID3v1 tags, at every MPEG version) and checks the sample count against
// what ffmpeg decodes.
func TestScanFramesMatchesFFmpeg(t *testing.T) {
	tests := []struct {
		rate, kbps, channels int
		tags                 bool
	}{
		{8000, 16, 1, false},
		{11025, 24, 1, true},
		{16000, 32, 1, false},
		{22050, 64, 2, true},
		{44100, 128, 2, true},
		{48000, 192, 2, false},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dHz_%dk_%dch_tags=%v", tt.rate, tt.kbps, tt.channels, tt.tags), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("%d.mp3", tt.rate))
			args := []string{"-v", "error", "-y", "-f", "lavfi",
				"-i", fmt.Sprintf("sine=frequency=440:sample_rate=%d:duration=1.3", tt.rate),
				"-ac", fmt.Sprint(tt.channels), "-c:a", "libmp3lame", "-b:a", fmt.Sprintf("%dk", tt.kbps),
				"-write_xing", "0"}
			if tt.tags {
				args = append(args, "-id3v2_version", "3", "-write_id3v1", "1", "-metadata", "title=tone")
			} else {
				args = append(args, "-id3v2_version", "0")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if out, err := exec.CommandContext(ctx, "ffmpeg", append(args, path)...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, out)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ScanFrames(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if tt.tags != (s.Start > 0) {
				t.Errorf("first frame at %d (tags %v)", s.Start, tt.tags)
			}
			wantEnd := int64(len(data))
			if tt.tags {
				wantEnd -= 128 // ID3v1
			}
			if s.End != wantEnd || s.SampleRate != tt.rate {
				t.Errorf("scan %+v; want End %d, rate %d", s, wantEnd, tt.rate)
			}
			pcm := audiotest.Run(t, nil, "ffmpeg", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-")
			if int64(len(pcm)) != s.Samples {
				t.Errorf("ffmpeg decodes %d samples, frames say %d", len(pcm), s.Samples)
			}
			d, err := MP3Duration(path)
			if err != nil || d != s.Duration || !near(d, time.Duration(len(pcm))*time.Second/time.Duration(tt.rate), time.Millisecond) {
				t.Errorf("MP3Duration %v, %v; scan %v", d, err, s.Duration)
			}
		})
	}
}

// TestScanFramesStereo: our dual recordings (8 kHz stereo) scan like mono ones, their
// channel count comes from the first frame, and a frame of the other count ends the run
// (it cannot belong to the same stream).
func TestScanFramesStereo(t *testing.T) {
	encode := func(channels int) []byte {
		var buf bytes.Buffer
		e, err := audio.NewMP3EncoderChannels(&buf, 32, channels)
		if err != nil {
			t.Fatal(err)
		}
		pcm := audio.SineWave(1000, time.Second, 8000)
		if channels == 2 {
			pcm = append(pcm, pcm...) // any 1 s of stereo samples
		}
		if err := e.Write(pcm); err != nil {
			t.Fatal(err)
		}
		e.Close()
		return buf.Bytes()
	}
	st, mono := encode(2), encode(1)
	s, err := ScanFrames(bytes.NewReader(st))
	if err != nil || s.Channels != 2 || s.End != int64(len(st)) || s.SampleRate != 8000 || !near(s.Duration, time.Second, 200*ms) {
		t.Fatalf("stereo scan %+v, %v", s, err)
	}
	if m, _ := ScanFrames(bytes.NewReader(mono)); m.Channels != 1 || m.End != int64(len(mono)) {
		t.Fatalf("mono scan %+v", m)
	}
	mixed, _ := ScanFrames(bytes.NewReader(append(bytes.Clone(st), mono...)))
	if mixed.End != int64(len(st)) || mixed.Frames != s.Frames {
		t.Fatalf("stereo then mono scans %+v; want it to stop at %d", mixed, len(st))
	}
	if none, _ := ScanFrames(bytes.NewReader(nil)); none.Channels != 0 {
		t.Fatalf("empty scan %+v", none)
	}
}

func TestMP3DurationErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.mp3")
	if err := os.WriteFile(junk, []byte("RIFF....WAVEfmt this is no mp3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := MP3Duration(junk); !errors.Is(err, ErrNoFrames) {
		t.Fatalf("junk: %v", err)
	}
	if _, err := MP3Duration(filepath.Join(dir, "missing.mp3")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

// TestRecoverCutsPartialFrame: a finished recording with half a frame (or junk) appended,
// renamed back to .part, recovers to exactly the original file.
func TestRecoverCutsPartialFrame(t *testing.T) {
	r := manualRecorder(t)
	start := time.Now()
	rec, err := r.Start("cut", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	res := simulate(t, r, rec, start, frames(false, 1000, 0, time.Second), time.Second)
	orig := mustRead(t, res.Path)
	tails := map[string][]byte{
		"half frame":  orig[len(orig)-288 : len(orig)-100],
		"header only": orig[len(orig)-288 : len(orig)-284],
		"zeros":       make([]byte, 700),
		"nothing":     nil,
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			part := filepath.Join(t.TempDir(), "x.mp3.part")
			if err := os.WriteFile(part, append(bytes.Clone(orig), tail...), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Recover(part)
			if err != nil {
				t.Fatal(err)
			}
			if got.Bytes != int64(len(orig)) || got.Duration != res.Duration {
				t.Fatalf("recovered %+v, want %d bytes %v", got, len(orig), res.Duration)
			}
			if !bytes.Equal(mustRead(t, got.Path), orig) {
				t.Fatal("recovered file differs from the original")
			}
		})
	}
	t.Run("not a part file", func(t *testing.T) {
		if _, err := Recover(res.Path); err == nil {
			t.Fatal("Recover accepted a .mp3")
		}
	})
	t.Run("no frames at all", func(t *testing.T) {
		part := filepath.Join(t.TempDir(), "y.mp3.part")
		if err := os.WriteFile(part, []byte{0xFF, 0xE3, 0x48}, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Recover(part)
		if err != nil || got.Bytes != 0 || got.Duration != 0 {
			t.Fatalf("%+v, %v", got, err)
		}
		if fi, err := os.Stat(got.Path); err != nil || fi.Size() != 0 {
			t.Fatalf("empty recovery: %v %v", fi, err)
		}
	})
}

func TestRecorderIDs(t *testing.T) {
	r := manualRecorder(t)
	for _, id := range []string{"", ".hidden", "../up", "a/b", `a\b`, "nul\x00"} {
		if _, err := r.Start(id, time.Now(), Mono); err == nil {
			t.Errorf("Start(%q) accepted", id)
		}
	}
	rec, err := r.Start("dup", time.Now(), Mono)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start("dup", time.Now(), Mono); err == nil {
		t.Fatal("second Start of a live id accepted")
	}
	if ids, err := r.Pending(); err != nil || len(ids) != 0 {
		t.Fatalf("a live recording is listed as pending: %v %v", ids, err)
	}
	if _, err := rec.Finish(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start("dup", time.Now(), Mono); err == nil {
		t.Fatal("Start over a finished .mp3 accepted")
	}
	if _, err := NewRecorder(t.TempDir(), WithBitrate(33)); err == nil {
		t.Fatal("bit rate 33 accepted")
	}
	if _, err := NewRecorder(t.TempDir(), WithMixInterval(2*time.Second)); err == nil {
		t.Fatal("mix interval beyond the buffer accepted")
	}
}

func FuzzParseFrameHeader(f *testing.F) {
	f.Add([]byte{0xFF, 0xE3, 0x48, 0xC4})
	f.Add([]byte{0xFF, 0xFB, 0x90, 0x64})
	f.Add([]byte{0xFF, 0xF3, 0x1A, 0xC0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseFrameHeader(b)
		if err != nil {
			return
		}
		if h.Size < 24 || h.Size > 1441 || (h.Samples != 576 && h.Samples != 1152) {
			t.Fatalf("implausible frame %+v", h)
		}
		switch h.SampleRate {
		case 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000:
		default:
			t.Fatalf("sample rate %d", h.SampleRate)
		}
		if h.Duration() <= 0 || h.Duration() > 150*time.Millisecond {
			t.Fatalf("frame duration %v", h.Duration())
		}
	})
}

func FuzzScanFrames(f *testing.F) {
	var buf bytes.Buffer
	e, err := audio.NewMP3Encoder(&buf, 16)
	if err != nil {
		f.Fatal(err)
	}
	e.Write(audio.SineWave(1000, 400*time.Millisecond, 8000))
	e.Close()
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)-50])
	f.Add(append([]byte("ID3\x03\x00\x00\x00\x00\x00\x05hello"), good...))
	f.Add(append(bytes.Clone(good), []byte("TAG")...))
	f.Add([]byte("ID3\x04\x00\x10\x7f\x7f\x7f\x7f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ScanFrames(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if s.Start > s.End || s.End > int64(len(data)) {
			t.Fatalf("scan %+v of %d bytes", s, len(data))
		}
		if (s.Frames == 0) != (s.End == s.Start) || (s.Frames == 0) != (s.Samples == 0) {
			t.Fatalf("inconsistent %+v", s)
		}
		// The valid prefix scans the same: what Recover keeps is stable.
		again, err := ScanFrames(bytes.NewReader(data[:s.End]))
		if err != nil || again != s {
			t.Fatalf("rescan of prefix: %+v, %v; want %+v", again, err, s)
		}
	})
}
