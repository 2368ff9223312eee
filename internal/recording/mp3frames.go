package recording

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// MPEG audio versions as FrameHeader.Version reports them.
const (
	MPEG1  = 10
	MPEG2  = 20
	MPEG25 = 25
)

// FrameHeader is a parsed MPEG-1/2/2.5 Layer III frame header.
type FrameHeader struct {
	Version    int  // MPEG1, MPEG2 or MPEG25
	Bitrate    int  // kbit/s
	SampleRate int  // Hz
	Padding    bool // one extra byte in this frame
	Mono       bool // channel mode 3 (single channel); else stereo, joint, or dual channel
	Size       int  // bytes, header included
	Samples    int  // PCM samples per channel the frame decodes to
}

// Channels is the number of channels the frame decodes to.
func (h FrameHeader) Channels() int {
	if h.Mono {
		return 1
	}
	return 2
}

// Duration is the play time of the frame.
func (h FrameHeader) Duration() time.Duration {
	return time.Duration(h.Samples) * time.Second / time.Duration(h.SampleRate)
}

// ErrNoFrames is returned by MP3Duration for a file with no MP3 frame at its start.
var ErrNoFrames = errors.New("recording: no mp3 frames")

// errBadHeader is returned by ParseFrameHeader for anything that is not a Layer III header.
var errBadHeader = errors.New("recording: not an mpeg layer III frame header")

var (
	// Layer III bit rates in kbit/s by bitrate index; 0 (free format) and 15 are invalid.
	bitratesV1 = [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}
	bitratesV2 = [16]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0}
	rateV1     = [3]int{44100, 48000, 32000}
)

// ParseFrameHeader parses the 4-byte header at the start of b. It accepts only Layer III
// frames with a listed bit rate (no free format) and a listed sample rate, and rejects the
// reserved emphasis value, so random bytes rarely pass for a header.
func ParseFrameHeader(b []byte) (FrameHeader, error) {
	if len(b) < 4 {
		return FrameHeader{}, errBadHeader
	}
	if b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return FrameHeader{}, errBadHeader
	}
	var h FrameHeader
	switch (b[1] >> 3) & 3 {
	case 0:
		h.Version = MPEG25
	case 2:
		h.Version = MPEG2
	case 3:
		h.Version = MPEG1
	default:
		return FrameHeader{}, errBadHeader
	}
	if (b[1]>>1)&3 != 1 { // layer bits 01 = Layer III
		return FrameHeader{}, errBadHeader
	}
	bi, si := b[2]>>4, (b[2]>>2)&3
	if si == 3 || b[3]&3 == 2 { // reserved sample rate, reserved emphasis
		return FrameHeader{}, errBadHeader
	}
	h.SampleRate = rateV1[si]
	coef := 144
	h.Samples = 1152
	h.Bitrate = bitratesV1[bi]
	switch h.Version {
	case MPEG2:
		h.SampleRate /= 2
	case MPEG25:
		h.SampleRate /= 4
	}
	if h.Version != MPEG1 {
		coef, h.Samples, h.Bitrate = 72, 576, bitratesV2[bi]
	}
	if h.Bitrate == 0 {
		return FrameHeader{}, errBadHeader
	}
	h.Padding = b[2]&2 != 0
	h.Mono = b[3]>>6 == 3
	h.Size = coef * h.Bitrate * 1000 / h.SampleRate
	if h.Padding {
		h.Size++
	}
	return h, nil
}

// Scan summarises the run of complete MP3 frames at the start of a stream.
type Scan struct {
	Frames     int           // complete frames
	Samples    int64         // decoded samples per channel
	Duration   time.Duration // play time of the complete frames
	SampleRate int           // of the first frame (0 when there is none)
	Channels   int           // of the first frame: 1, or 2 (0 when there is none)
	Start      int64         // offset of the first frame (after any ID3v2 tag)
	End        int64         // offset just past the last complete frame
}

// ScanFrames walks frame headers from the start of r: it skips a leading ID3v2 tag, then
// follows frame sizes while each header parses, matches the first frame's version, sample
// rate and channel count (mono, or one of the two-channel modes), and its frame is complete. It stops, without error, at the first thing
// that is not such a frame (a truncated last frame, an ID3v1 tag, garbage); Scan.End tells
// where. Only read errors other than EOF are returned.
func ScanFrames(r io.Reader) (Scan, error) {
	br := bufio.NewReaderSize(r, 4096)
	var s Scan
	var off int64
	if p, err := br.Peek(10); err == nil && string(p[:3]) == "ID3" {
		size := int64(p[6]&0x7F)<<21 | int64(p[7]&0x7F)<<14 | int64(p[8]&0x7F)<<7 | int64(p[9]&0x7F)
		size += 10
		if p[5]&0x10 != 0 { // footer present
			size += 10
		}
		n, err := br.Discard(int(size))
		off += int64(n)
		if err != nil {
			return s, ignoreEOF(err)
		}
	}
	s.Start, s.End = off, off
	var first FrameHeader
	for {
		p, err := br.Peek(4)
		if err != nil {
			return s, ignoreEOF(err)
		}
		h, herr := ParseFrameHeader(p)
		if herr != nil {
			return s, nil
		}
		if s.Frames > 0 && (h.Version != first.Version || h.SampleRate != first.SampleRate || h.Mono != first.Mono) {
			return s, nil
		}
		n, err := br.Discard(h.Size)
		if err != nil || n < h.Size {
			return s, ignoreEOF(err)
		}
		if s.Frames == 0 {
			first = h
			s.SampleRate = h.SampleRate
			s.Channels = h.Channels()
		}
		off += int64(n)
		s.Frames++
		s.Samples += int64(h.Samples)
		s.Duration += h.Duration()
		s.End = off
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}

// MP3Duration is the play time of the MP3 file at path, found by walking its frame headers
// (a trailing partial frame does not count). It returns ErrNoFrames when the file does not
// start with MP3 frames.
func MP3Duration(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s, err := ScanFrames(f)
	if err != nil {
		return 0, fmt.Errorf("recording: scanning %s: %w", path, err)
	}
	if s.Frames == 0 {
		return 0, ErrNoFrames
	}
	return s.Duration, nil
}
