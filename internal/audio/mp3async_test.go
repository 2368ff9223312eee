package audio

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// continuousMP3 encodes pcm with one LAME state for the whole stream, configured as the
// encoding threads configure theirs (no bit reservoir).
func continuousMP3(t *testing.T, pcm []int16, kbps, channels int) []byte {
	t.Helper()
	gf, err := newLAME(kbps, channels, false)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	e := newMP3Encoder(&buf, gf, channels)
	if err := e.Write(pcm); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// asyncSignal is 3 s of a 1 kHz tone with a little noise, plus a second of speech-like
// bursts, interleaved into channels.
func asyncSignal(channels int) []int16 {
	tone := SineWave(1000, 3*time.Second, 8000)
	for i := range tone {
		tone[i] += int16((i*7919)%600 - 300)
	}
	bursts := SineWave(440, time.Second, 9000)
	for i := range bursts {
		if (i/700)%3 == 0 {
			bursts[i] = 0
		}
	}
	mono := append(tone, bursts...)
	if channels == 1 {
		return mono
	}
	pcm := make([]int16, 2*len(mono))
	for i, v := range mono {
		pcm[2*i], pcm[2*i+1] = v, int16((i*131)%4000-2000)
	}
	return pcm
}

// The encoding threads produce exactly what one LAME state given the whole stream makes, for
// many encoders at once sharing the threads' LAME states, whatever the block sizes: the
// segments join without a seam.
func TestAsyncMP3EncoderMatchesContinuous(t *testing.T) {
	for _, tc := range []struct {
		name           string
		kbps, channels int
		encoders       int
	}{
		{"mono 32", 32, 1, 24},
		{"stereo 32", 32, 2, 8},
		{"mono 16", 16, 1, 4},
		{"mono and stereo together", 0, 0, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var wg sync.WaitGroup
			errs := make(chan error, tc.encoders)
			for k := range tc.encoders {
				kbps, channels := tc.kbps, tc.channels
				if channels == 0 { // alternate
					kbps, channels = 32, 1+k%2
				}
				pcm := asyncSignal(channels)
				want := continuousMP3(t, pcm, kbps, channels)
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- func() error {
						path := filepath.Join(dir, fmt.Sprintf("%d.mp3", k))
						f, err := os.Create(path)
						if err != nil {
							return err
						}
						defer f.Close()
						a, err := NewAsyncMP3Encoder(f, kbps, channels)
						if err != nil {
							return err
						}
						block := (250 + 37*k) * channels // odd sizes, different per encoder
						for off := 0; off < len(pcm); off += block {
							if err := a.Write(pcm[off:min(off+block, len(pcm))]); err != nil {
								return err
							}
							if k%3 == 0 {
								time.Sleep(time.Millisecond) // let the other streams take turns
							}
						}
						if err := a.Close(); err != nil {
							return err
						}
						got, err := os.ReadFile(path)
						if err != nil {
							return err
						}
						if a.Bytes() != int64(len(got)) {
							return fmt.Errorf("encoder %d: Bytes %d, file %d", k, a.Bytes(), len(got))
						}
						if !bytes.Equal(got, want) {
							return fmt.Errorf("encoder %d: %d bytes differ from one LAME state's %d", k, len(got), len(want))
						}
						return nil
					}()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// asyncFile returns an AsyncMP3Encoder writing to a new file at path, which is closed when
// the test ends.
func asyncFile(tb testing.TB, path string, kbps, channels int) *AsyncMP3Encoder {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	a, err := NewAsyncMP3Encoder(f, kbps, channels)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// A file that cannot be written fails the encoder, and the failure is reported.
func TestAsyncMP3EncoderWriteError(t *testing.T) {
	f, err := os.Open(os.DevNull) // read-only: every write fails with EBADF
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := NewAsyncMP3Encoder(f, 32, 1)
	if err != nil {
		t.Fatal(err)
	}
	pcm := SineWave(440, time.Second, 8000)
	var werr error
	for range 4 {
		if werr = a.Write(pcm); werr != nil {
			break
		}
	}
	cerr := a.Close()
	if werr == nil && cerr == nil {
		t.Fatal("writing to a read-only file reported no error")
	}
	if err := a.Write(pcm); err != ErrEncoderClosed {
		t.Fatalf("Write after Close: %v, want ErrEncoderClosed", err)
	}
}

// EncoderQueue counts the blocks written and not yet encoded: while the encoder's file blocks
// (a pipe nobody reads) they pile up, and once it drains they are gone.
func TestEncoderQueue(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	base := EncoderQueue()
	enc, err := NewAsyncMP3Encoder(w, 32, 1)
	if err != nil {
		t.Fatal(err)
	}
	block := SineWave(1000, 5*time.Second, 8000) // about 20 KB of MP3: a few fill the pipe
	for range asyncMaxPending {
		if err := enc.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for EncoderQueue() < base+asyncMaxPending-4 { // the thread takes a few before the pipe is full
		if time.Now().After(deadline) {
			t.Fatalf("queue %d with the file blocked, want about %d", EncoderQueue(), base+asyncMaxPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	go io.Copy(io.Discard, r)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if q := EncoderQueue(); q > base {
		t.Fatalf("queue %d after Close, was %d before", q, base)
	}
}

// A 1 kHz tone encoded in segments, while other streams take the same LAME states between
// them, decodes (ffmpeg, mpg123, minimp3) without a click or a dip at any of its ~20 joins:
// every 9 ms window holds the tone at its level, and every 72 ms frame matches the ideal sine
// as closely as the best frame does, less 1 dB.
func TestAsyncMP3EncoderJoinsDecode(t *testing.T) {
	const d = 10 * time.Second
	const amp = 10000
	pcm := SineWave(1000, d, amp)
	dir := t.TempDir()
	path := filepath.Join(dir, "tone.mp3")
	a := asyncFile(t, path, 32, 1)
	b := asyncFile(t, filepath.Join(dir, "other.mp3"), 32, 1)
	noise := make([]int16, 1152)
	for i := range noise {
		noise[i] = int16((i*7919)%20000 - 10000)
	}
	for off := 0; off < len(pcm); off += 1152 { // as the recorder's mixer writes
		if err := a.Write(pcm[off:min(off+1152, len(pcm))]); err != nil {
			t.Fatal(err)
		}
		if err := b.Write(noise); err != nil {
			t.Fatal(err)
		}
		if off%(4*1152) == 0 {
			time.Sleep(time.Millisecond) // let the threads take segments of both in turn
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for name, got := range decodeAll(t, path) {
		t.Run(name, func(t *testing.T) {
			if len(got) < len(pcm)+MP3EncoderDelay {
				t.Fatalf("decoded %d samples, want ≥ %d", len(got), len(pcm)+MP3EncoderDelay)
			}
			got := got[MP3EncoderDelay : MP3EncoderDelay+len(pcm)]
			const win = 72 // 9 ms
			lo, hi := math.Inf(1), 0.0
			for off := 576; off+win <= len(got)-576; off += win {
				r := RMS(got[off : off+win])
				lo, hi = min(lo, r), max(hi, r)
			}
			want := amp / math.Sqrt2
			if lo < want*0.85 || hi > want*1.15 {
				t.Errorf("9 ms RMS from %.0f to %.0f, want all within 15 %% of %.0f", lo, hi, want)
			}
			best, worst, at := 0.0, math.Inf(1), 0
			for fr := 1; (fr+1)*576 <= len(got)-576; fr++ {
				var sig, noise float64
				for i := fr * 576; i < (fr+1)*576; i++ {
					e := float64(got[i]) - float64(pcm[i])
					sig += float64(pcm[i]) * float64(pcm[i])
					noise += e * e
				}
				snr := 10 * math.Log10(sig/max(noise, 1))
				best = max(best, snr)
				if snr < worst {
					worst, at = snr, fr
				}
			}
			t.Logf("9 ms RMS %.0f..%.0f (ideal %.0f); frame SNR %.1f..%.1f dB (worst at frame %d)", lo, hi, want, worst, best, at)
			if worst < best-1 {
				t.Errorf("frame %d decodes at %.1f dB SNR, the best at %.1f: a seam", at, worst, best)
			}
		})
	}
}
