package audio

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The encoding threads produce exactly what the in-process encoder does, for many encoders
// at once, whatever the block sizes.
func TestAsyncMP3EncoderMatchesSync(t *testing.T) {
	dir := t.TempDir()
	const encoders = 24
	pcm := SineWave(1000, 3*time.Second, 8000)
	for i := range pcm {
		pcm[i] += int16((i*7919)%600 - 300)
	}
	var want bytes.Buffer
	sync1, err := NewMP3Encoder(&want, 32)
	if err != nil {
		t.Fatal(err)
	}
	if err := sync1.Write(pcm); err != nil {
		t.Fatal(err)
	}
	if err := sync1.Close(); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, encoders)
	for k := range encoders {
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
				a, err := NewAsyncMP3Encoder(f, 32, 1)
				if err != nil {
					return err
				}
				block := 250 + 37*k // odd sizes, different per encoder
				for off := 0; off < len(pcm); off += block {
					if err := a.Write(pcm[off:min(off+block, len(pcm))]); err != nil {
						return err
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
				if !bytes.Equal(got, want.Bytes()) {
					return fmt.Errorf("encoder %d: %d bytes differ from the in-process encoder's %d", k, len(got), want.Len())
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
