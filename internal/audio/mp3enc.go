package audio

/*
#cgo LDFLAGS: -lmp3lame
#include <stdlib.h>
#include <malloc.h>
#include <lame/lame.h>

// ivrd_c_heap is the C heap in use (glibc), for the encoder's leak test.
static long long ivrd_c_heap(void) {
	struct mallinfo2 m = mallinfo2();
	return (long long)(m.uordblks + m.hblkhd);
}

// ivrd_malloc_tune fixes glibc's mmap threshold at 64 KiB. LAME's state is three blocks of
// 87 to 144 KiB, calloc'd, of which an 8 kHz mono encoder touches a small part. Left to
// itself glibc raises the threshold past them after the first lame_close, and from then on
// they come from the heap, cleared in full: BenchmarkMP3EncoderMemory measures 229 KiB
// resident per encoder that way against 93 KiB when they are mapped (only the pages LAME
// touches are resident).
static void ivrd_malloc_tune(void) {
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
}

// ivrd_lame_new configures a LAME encoder for Rate-in, Rate-out CBR, mono (channels 1) or
// stereo (2: left and right coded independently, never as mid/side, so that neither channel
// takes on the other's sound). It returns NULL when LAME refuses the parameters; *outRate
// receives the sample rate LAME settled on.
static lame_global_flags *ivrd_lame_new(int rate, int kbps, int channels, int *outRate) {
	lame_global_flags *gf = lame_init();
	if (gf == NULL) {
		return NULL;
	}
	lame_set_in_samplerate(gf, rate);
	lame_set_out_samplerate(gf, rate);
	lame_set_num_channels(gf, channels);
	lame_set_mode(gf, channels == 2 ? STEREO : MONO);
	lame_set_VBR(gf, vbr_off);
	lame_set_brate(gf, kbps);
	// Quality 7 leaves out LAME's noise shaping: on 8 kHz speech it encodes in about 55 %
	// of quality 5's CPU (BenchmarkRecording: 0.074 -> 0.040 % of a core per call; encoding
	// is the largest cost of a monitored call) at the same SNR (speech: 23.6 dB vs 22.9).
	// See BENCHMARKS.md.
	lame_set_quality(gf, 7);
	// Long blocks only: at 8 kHz and 32 kbit/s LAME's short blocks (for sharp attacks) cost
	// their bits more than they save on speech. Without them 600 s of espeak-ng speech
	// decodes at 24.5 dB SNR instead of 21.3 and encodes about 15 % faster.
	lame_set_no_short_blocks(gf, 1);
	lame_set_bWriteVbrTag(gf, 0);
	if (lame_init_params(gf) < 0) {
		lame_close(gf);
		return NULL;
	}
	*outRate = lame_get_out_samplerate(gf);
	return gf;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// DefaultMP3Kbps is the CBR bit rate NewMP3Encoder uses when asked for 0 kbps.
const DefaultMP3Kbps = 32

// mp3Chunk is the largest number of samples handed to LAME in one call, which bounds the
// output buffer: LAME documents a worst case of 1.25*samples + 7200 bytes.
const mp3Chunk = 1152

// mp3EncoderDelay is how many samples an MP3 decoder that knows nothing of LAME's encoder
// delay (no Xing/LAME tag: ffmpeg, mpg123, minimp3) outputs before the first input sample:
// LAME's 576-sample encoder delay plus the decoder's 528+1-sample MDCT/filterbank delay.
// Measured in TestMP3EncoderDelay.
const mp3EncoderDelay = 576 + 529

// MP3EncoderDelay is the lead-in of silence, in samples at Rate, that decoding an MP3 made
// by MP3Encoder adds before the first sample written. A caller that needs the decoded
// timeline to match its own (the call recorder) drops this many samples at its start.
const MP3EncoderDelay = mp3EncoderDelay

// maxMP3Kbps is the highest bit rate LAME codes at 8 kHz (it clamps anything above, though
// MPEG-2.5 would allow 160): a stereo stream asked for more than twice 32 kbit/s gets this.
const maxMP3Kbps = 64

func init() { C.ivrd_malloc_tune() }

// validMP3Kbps lists the MPEG-2.5 Layer III bit rates that make sense at 8 kHz.
var validMP3Kbps = map[int]bool{8: true, 16: true, 24: true, 32: true, 40: true, 48: true, 56: true, 64: true}

// MP3Encoder streams 8 kHz PCM, mono or interleaved stereo, into a constant-bit-rate MPEG-2.5
// Layer III stream through libmp3lame. Every Write hands LAME's complete output straight to the underlying
// writer; nothing but LAME's own look-ahead (about a frame) is held back. There is no
// Xing/VBR header, so any prefix of the output that ends on a frame boundary is a valid
// MP3 file. An MP3Encoder is not safe for concurrent use: use it from one goroutine at a
// time, and Close it to flush the last frames and free the C state.
type MP3Encoder struct {
	gf       *C.lame_global_flags
	channels int
	cleanup  runtime.Cleanup
	w        io.Writer
	samples  int64 // PCM samples accepted (per channel)
	bytes    int64 // MP3 bytes written to w
	err      error // sticky write error
}

// ErrEncoderClosed is returned by Write after Close.
var ErrEncoderClosed = errors.New("audio: mp3 encoder closed")

// NewMP3Encoder returns an encoder writing to w at kbps (0 means DefaultMP3Kbps; one of
// 8, 16, …, 64). Input and output are Rate (8 kHz), mono, CBR, LAME quality 7.
func NewMP3Encoder(w io.Writer, kbps int) (*MP3Encoder, error) {
	return NewMP3EncoderChannels(w, kbps, 1)
}

// NewMP3EncoderChannels is NewMP3Encoder for channels 1 (mono) or 2 (stereo: Write takes
// interleaved left, right samples). kbps is per channel: a stereo stream has twice the bit
// rate, so each channel is coded as well as a mono stream at kbps, up to LAME's 64 kbit/s at
// 8 kHz (a stereo stream asked for 40..64 per channel is coded at 64 in all).
func NewMP3EncoderChannels(w io.Writer, kbps, channels int) (*MP3Encoder, error) {
	if w == nil {
		return nil, errors.New("audio: nil writer for mp3 encoder")
	}
	gf, err := newLAME(kbps, channels)
	if err != nil {
		return nil, err
	}
	e := &MP3Encoder{
		gf:       gf,
		channels: channels,
		w:        w,
	}
	// A forgotten Close must not leak the C state; Close stops this cleanup so the state is
	// freed exactly once.
	e.cleanup = runtime.AddCleanup(e, func(gf *C.lame_global_flags) { C.lame_close(gf) }, gf)
	return e, nil
}

// newLAME returns LAME's state configured for Rate CBR at kbps per channel (0:
// DefaultMP3Kbps), mono or stereo.
func newLAME(kbps, channels int) (*C.lame_global_flags, error) {
	if kbps == 0 {
		kbps = DefaultMP3Kbps
	}
	if !validMP3Kbps[kbps] {
		return nil, fmt.Errorf("audio: mp3 bit rate %d kbps not supported at %d Hz (use 8..64 in steps of 8)", kbps, Rate)
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("audio: %d channels (want 1 or 2)", channels)
	}
	total := min(kbps*channels, maxMP3Kbps)
	var outRate C.int
	gf := C.ivrd_lame_new(C.int(Rate), C.int(total), C.int(channels), &outRate)
	if gf == nil {
		return nil, fmt.Errorf("audio: lame refused %d Hz, %d channels, %d kbps", Rate, channels, total)
	}
	if outRate != C.int(Rate) {
		C.lame_close(gf)
		return nil, fmt.Errorf("audio: lame chose %d Hz output instead of %d", int(outRate), Rate)
	}
	return gf, nil
}

// flushLAME hands LAME's last frames of gf to write.
func flushLAME(gf *C.lame_global_flags, write func([]byte) error) error {
	out := mp3Out.Get().(*[]byte)
	defer mp3Out.Put(out)
	got := C.lame_encode_flush(gf, (*C.uchar)(unsafe.Pointer(&(*out)[0])), C.int(len(*out)))
	if got < 0 {
		return fmt.Errorf("audio: lame_encode_flush failed with code %d", int(got))
	}
	return write((*out)[:got])
}

// Write encodes pcm (Rate; stereo interleaved left, right) and writes whatever MP3 bytes LAME
// completed to the underlying writer. A write error is sticky: later Writes return it too.
func (e *MP3Encoder) Write(pcm []int16) error {
	if e.gf == nil {
		return ErrEncoderClosed
	}
	if e.err != nil {
		return e.err
	}
	if len(pcm)%e.channels != 0 {
		return fmt.Errorf("audio: %d samples do not make whole stereo frames", len(pcm))
	}
	out := mp3Out.Get().(*[]byte)
	defer mp3Out.Put(out)
	for len(pcm) > 0 {
		n := min(len(pcm)/e.channels, mp3Chunk) // samples per channel
		var got C.int
		if e.channels == 2 {
			got = C.lame_encode_buffer_interleaved(e.gf,
				(*C.short)(unsafe.Pointer(&pcm[0])), C.int(n),
				(*C.uchar)(unsafe.Pointer(&(*out)[0])), C.int(len(*out)))
		} else {
			got = C.lame_encode_buffer(e.gf,
				(*C.short)(unsafe.Pointer(&pcm[0])), nil, C.int(n),
				(*C.uchar)(unsafe.Pointer(&(*out)[0])), C.int(len(*out)))
		}
		if got < 0 {
			e.err = fmt.Errorf("audio: lame_encode_buffer failed with code %d", int(got))
			return e.err
		}
		e.samples += int64(n)
		if err := e.emit((*out)[:got]); err != nil {
			return err
		}
		pcm = pcm[n*e.channels:]
	}
	return nil
}

// mp3Out holds LAME's output buffers (its documented worst case for one chunk): only the
// encoders that are encoding at the moment need one, so idle calls hold none.
var mp3Out = sync.Pool{New: func() any {
	b := make([]byte, mp3Chunk*5/4+7200)
	return &b
}}

func (e *MP3Encoder) emit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	m, err := e.w.Write(b)
	e.bytes += int64(m)
	if err == nil && m < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		e.err = fmt.Errorf("audio: writing mp3: %w", err)
	}
	return e.err
}

// cHeapInUse is the number of bytes malloc has handed out and not got back (glibc).
func cHeapInUse() int64 { return int64(C.ivrd_c_heap()) }

// Samples is the number of PCM samples (per channel) encoded so far.
func (e *MP3Encoder) Samples() int64 { return e.samples }

// Bytes is the number of MP3 bytes written to the underlying writer so far.
func (e *MP3Encoder) Bytes() int64 { return e.bytes }

// Close flushes LAME's last frames to the writer and frees the encoder. It is safe to call
// more than once; only the first call flushes.
func (e *MP3Encoder) Close() error {
	if e.gf == nil {
		return nil
	}
	err := e.err
	if err == nil {
		err = flushLAME(e.gf, e.emit)
	}
	e.cleanup.Stop()
	C.lame_close(e.gf)
	e.gf = nil
	return err
}
