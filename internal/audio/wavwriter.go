package audio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// wavHeaderLen is the length of EncodeWAV's canonical header.
const wavHeaderLen = 44

// WAVWriter streams 16-bit mono PCM into a WAVE file: the header goes first with empty sizes,
// the samples follow as they come, and Close fills the sizes in. Not safe for concurrent use.
type WAVWriter struct {
	f   io.WriteSeeker
	w   *bufio.Writer
	n   int64 // samples written
	err error
}

// NewWAVWriter writes the header of a WAVE file of 16-bit mono PCM at rate to f.
func NewWAVWriter(f io.WriteSeeker, rate int) (*WAVWriter, error) {
	w := &WAVWriter{f: f, w: bufio.NewWriterSize(f, 32<<10)}
	if _, err := w.w.Write(EncodeWAV(nil, rate)); err != nil {
		return nil, err
	}
	return w, nil
}

// Write appends pcm.
func (w *WAVWriter) Write(pcm []int16) error {
	if w.err != nil {
		return w.err
	}
	var b [2]byte
	for _, s := range pcm {
		binary.LittleEndian.PutUint16(b[:], uint16(s))
		if _, err := w.w.Write(b[:]); err != nil {
			w.err = err
			return err
		}
	}
	w.n += int64(len(pcm))
	return nil
}

// Silence appends n samples of silence.
func (w *WAVWriter) Silence(n int) error {
	var zero [FrameSamples]int16
	for n > 0 {
		k := min(n, len(zero))
		if err := w.Write(zero[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Samples is how many samples have been written.
func (w *WAVWriter) Samples() int64 { return w.n }

// Size is the file's size once closed: the header and the samples.
func (w *WAVWriter) Size() int64 { return wavHeaderLen + 2*w.n }

// Close flushes the samples and writes the RIFF and data sizes into the header. It does not
// close f.
func (w *WAVWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		return err
	}
	data := 2 * w.n
	if data > 0xFFFFFFFF-36 {
		return errors.New("audio: WAV data over 4 GiB")
	}
	var b [4]byte
	for _, f := range []struct {
		off int64
		v   uint32
	}{{4, uint32(36 + data)}, {40, uint32(data)}} {
		binary.LittleEndian.PutUint32(b[:], f.v)
		if _, err := w.f.Seek(f.off, io.SeekStart); err != nil {
			return err
		}
		if _, err := w.f.Write(b[:]); err != nil {
			return err
		}
	}
	_, err := w.f.Seek(0, io.SeekEnd)
	return err
}
