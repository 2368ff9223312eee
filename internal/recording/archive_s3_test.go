package recording

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/tests3"
)

// s3Store is a blob.S3 on srv's bucket.
func s3Store(t testing.TB, srv *tests3.Server) *blob.S3 {
	t.Helper()
	s, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: srv.Bucket, AccessKey: srv.Access, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var testSigner = blob.Signer{Secret: []byte("0123456789abcdef0123456789abcdef"), BaseURL: "http://ivrd.test"}

// s3Archive is an Archive on a real-time recorder in dir, storing in s and uploading pieces.
func s3Archive(t testing.TB, dir string, s *blob.S3, blobs Blobs) *Archive {
	t.Helper()
	r, err := NewRecorder(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if blobs == nil {
		blobs = s
	}
	a, err := NewArchive(ArchiveConfig{Recorder: r, Blobs: blobs, Signer: testSigner, Pieces: s})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fetch reads a stored blob whole.
func fetch(t testing.TB, st Blobs, key string) []byte {
	t.Helper()
	b, err := blob.ReadAll(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeFFmpeg decodes MP3 bytes with ffmpeg (through a file, as decodeAll reads one).
func decodeFFmpeg(t *testing.T, mp3 []byte) []int16 {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.mp3")
	if err := os.WriteFile(p, mp3, 0o644); err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, p)["ffmpeg"]
}

// keepingBlobs stores in the S3 store and keeps a copy of each file it is given.
type keepingBlobs struct {
	*blob.S3
	mu    sync.Mutex
	files map[string][]byte
}

func (k *keepingBlobs) PutFile(key, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.files[key] = b
	k.mu.Unlock()
	return k.S3.PutFile(key, src)
}

// sample is what the test saw of a recording at one moment.
type sample struct {
	at       time.Time
	part     int64 // bytes in the .part file
	uploaded int64 // bytes in its pieces
	pieces   int
}

// TestArchiveS3UploadsPieces: during a 14 s call the recording's MP3 reaches the store in
// pieces at least every 5 s (new pieces seen while recording, and their timestamps), the
// pieces never lag the local file by more than 5 s, and at the end the one stored object is
// exactly the local file, the pieces are gone, and it decodes to the caller's tone.
func TestArchiveS3UploadsPieces(t *testing.T) {
	srv := tests3.Start(t)
	s := s3Store(t, srv)
	kept := &keepingBlobs{S3: s, files: map[string][]byte{}}
	a := s3Archive(t, t.TempDir(), s, kept)
	const id, callLen = "rec-up", 14 * time.Second
	start := time.Now()
	take, err := a.Start(info(id, KindMonitor, start, Mono))
	if err != nil {
		t.Fatal(err)
	}
	fed := make(chan struct{})
	go func() { feedTone(take.Recording, start, callLen); close(fed) }()

	var seen []sample
	for time.Since(start) < callLen {
		time.Sleep(250 * time.Millisecond)
		st, err := os.Stat(take.PartPath())
		if err != nil {
			t.Fatal(err)
		}
		objs, err := srv.Objects("pieces/" + id + ".mp3/")
		if err != nil {
			t.Fatal(err)
		}
		sm := sample{at: time.Now(), part: st.Size(), pieces: len(objs)}
		for _, o := range objs {
			sm.uploaded += o.Size
		}
		seen = append(seen, sm)
	}
	var buf bytes.Buffer
	if _, err := s.ReadPieces(context.Background(), id+".mp3", &buf); err != nil {
		t.Fatal(err)
	}
	objs, _ := srv.Objects("pieces/" + id + ".mp3/")
	<-fed
	u, err := take.Finish(time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// Pieces came at least every 5 s: by count seen while recording ...
	last, count := start, 0
	for _, sm := range seen {
		if sm.pieces > count {
			last, count = sm.at, sm.pieces
		} else if sm.at.Sub(last) > 5*time.Second {
			t.Fatalf("no new piece from %v to %v after the start (samples %+v)", last.Sub(start), sm.at.Sub(start), seen)
		}
	}
	// ... by the pieces' own timestamps ...
	if len(objs) < 3 {
		t.Fatalf("%d pieces in a %v call", len(objs), callLen)
	}
	times := []time.Time{start}
	for _, o := range objs {
		times = append(times, o.ModTime)
	}
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > 5*time.Second {
			t.Fatalf("pieces %v apart: %v", d, objs)
		}
	}
	// ... and what was stored was never more than 5 s behind the file.
	for _, sm := range seen {
		if want := partAt(seen, sm.at.Add(-5*time.Second)); sm.uploaded < want {
			t.Fatalf("at %v: %d bytes uploaded, the file had %d 5 s before", sm.at.Sub(start), sm.uploaded, want)
		}
	}
	t.Logf("%d pieces in %v; last sample: file %d bytes, uploaded %d", len(objs), callLen, seen[len(seen)-1].part, seen[len(seen)-1].uploaded)

	// The end: one object, exactly the local file; the pieces were its beginning, and are gone.
	key := id + ".mp3"
	final := fetch(t, s, key)
	if local := kept.files[key]; len(local) == 0 || !bytes.Equal(final, local) {
		t.Fatalf("stored object (%d bytes) is not the local file (%d bytes)", len(final), len(local))
	}
	if buf.Len() == 0 || !bytes.HasPrefix(final, buf.Bytes()) {
		t.Fatalf("the pieces (%d bytes) are not the start of the recording (%d bytes)", buf.Len(), len(final))
	}
	if left, _ := srv.Objects("pieces/"); len(left) != 0 {
		t.Fatalf("pieces left after the end: %v", left)
	}
	if !strings.Contains(u, "/recordings/"+key+"?") {
		t.Fatalf("URL %s", u)
	}
	pcm := decodeFFmpeg(t, final)
	if d := audio.Duration(len(pcm)); d < callLen-time.Second || d > callLen+time.Second {
		t.Fatalf("decoded %v of a %v call", d, callLen)
	}
	heard := toneCover(pcm)
	if heard < audio.Duration(len(pcm))*9/10 {
		t.Fatalf("tone covers %v of %v", heard, audio.Duration(len(pcm)))
	}
}

// partAt is the file size of the last sample at or before at (0 before the first).
func partAt(seen []sample, at time.Time) int64 {
	var n int64
	for _, sm := range seen {
		if sm.at.After(at) {
			break
		}
		n = sm.part
	}
	return n
}

// toneCover is how much of pcm holds the 1 kHz tone.
func toneCover(pcm []int16) time.Duration {
	var heard time.Duration
	for _, sp := range audio.ToneSpans(pcm, audio.Rate, 1000, 20*time.Millisecond, 0.5) {
		heard += sp.Len()
	}
	return heard
}

// TestArchiveS3Recover finds a recording again in each state a crash can leave it in with an
// S3 store: the local file wins over the pieces; a stored recording has its leftover pieces
// deleted; pieces alone (the call ran on a node that died) are enough; and a store that is
// down is an error (the session waits for the next attempt), not a missing recording.
func TestArchiveS3Recover(t *testing.T) {
	srv := tests3.Start(t)
	s := s3Store(t, srv)
	mp3 := recordMP3(t)
	ctx := context.Background()
	putPieces := func(t *testing.T, key string, b []byte, cuts ...int) {
		t.Helper()
		cuts = append(append([]int{0}, cuts...), len(b))
		for i := 0; i+1 < len(cuts); i++ {
			if err := s.PutPiece(ctx, key, int64(cuts[i]), b[cuts[i]:cuts[i+1]]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name  string
		leave func(t *testing.T, a *Archive, key string)
		found bool
	}{
		{"being written, pieces behind it", func(t *testing.T, a *Archive, key string) {
			write(t, a.rec.PartPath("rec-x"), append(append([]byte(nil), mp3...), mp3[:100]...))
			putPieces(t, key, mp3[:1000], 400)
		}, true},
		{"stored, pieces left", func(t *testing.T, a *Archive, key string) {
			p := filepath.Join(t.TempDir(), "x.mp3")
			write(t, p, mp3)
			if err := s.PutFile(key, p); err != nil {
				t.Fatal(err)
			}
			putPieces(t, key, mp3[:1000])
		}, true},
		{"only pieces, a partial last frame", func(t *testing.T, a *Archive, key string) {
			putPieces(t, key, append(append([]byte(nil), mp3...), mp3[:100]...), 1000, 1001, 4000)
		}, true},
		{"pieces without a whole frame", func(t *testing.T, a *Archive, key string) {
			putPieces(t, key, mp3[:200], 100)
		}, false},
		{"nothing", func(t *testing.T, a *Archive, key string) {}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := s3Archive(t, t.TempDir(), s, nil)
			const key = "rec-x.mp3"
			t.Cleanup(func() { s.Delete(key); s.DeletePieces(ctx, key) })
			c.leave(t, a, key)
			u, length, err := a.Recover(info("rec-x", KindMonitor, time.Time{}, 0))
			if err != nil {
				t.Fatal(err)
			}
			if left, _ := srv.Objects("pieces/"); len(left) != 0 {
				t.Fatalf("pieces left: %v", left)
			}
			if ents, _ := os.ReadDir(a.rec.Dir()); len(ents) != 0 {
				t.Fatalf("left in the recorder's directory: %v", ents)
			}
			if !c.found {
				if u != "" || length != 0 {
					t.Fatalf("got %q, %v; want nothing", u, length)
				}
				if _, err := s.Open(ctx, key); err == nil {
					t.Fatal("an empty recording was stored")
				}
				return
			}
			if !near(length, 2*time.Second, 150*ms) || !strings.Contains(u, "/recordings/"+key+"?") {
				t.Fatalf("got %q, %v; want the URL of about 2 s", u, length)
			}
			p := filepath.Join(t.TempDir(), key)
			write(t, p, fetch(t, s, key))
			checkTone(t, p)
		})
	}
	t.Run("store down", func(t *testing.T) {
		a := s3Archive(t, t.TempDir(), s, nil)
		srv.Stop()
		if u, _, err := a.Recover(info("rec-z", KindMonitor, time.Time{}, 0)); err == nil {
			t.Fatalf("Recover with the store down: %q, no error", u)
		}
	})
}

// flakyBlobs is a remote store that is unavailable for its first fails puts.
type flakyBlobs struct {
	*blob.Local
	fails int
	tries int
}

func (f *flakyBlobs) PutFile(key, src string) error {
	f.tries++
	if f.tries <= f.fails {
		return fmt.Errorf("%w: connection refused", blob.ErrUnavailable)
	}
	return f.Local.PutFile(key, src)
}

// TestArchiveRidesOutStoreOutage: a call that ends while the remote store is briefly down
// waits for it and gets its URL; a store that refuses for good (not an outage) fails at once.
func TestArchiveRidesOutStoreOutage(t *testing.T) {
	r := newArchiveRig(t)
	flaky := &flakyBlobs{Local: r.blobs, fails: 2}
	a, err := NewArchive(ArchiveConfig{Recorder: r.rec, Blobs: flaky, Signer: r.signer})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	take, err := a.Start(info("rec-o", KindMonitor, start, Mono))
	if err != nil {
		t.Fatal(err)
	}
	ps, end := toneCall()
	feed(r.rec, take.Recording, start, ps, end)
	t0 := time.Now()
	u, err := take.Finish(start.Add(end))
	if err != nil || flaky.tries != 3 {
		t.Fatalf("Finish: %q %v after %d tries", u, err, flaky.tries)
	}
	if d := time.Since(t0); d < 3*time.Second || d > 6*time.Second {
		t.Fatalf("waited %v for the store (1 s + 2 s)", d)
	}
	checkTone(t, r.checkURL(t, "rec-o", u))

	b, err := NewArchive(ArchiveConfig{Recorder: r.rec, Blobs: failingBlobs{r.blobs}, Signer: r.signer})
	if err != nil {
		t.Fatal(err)
	}
	take, err = b.Start(info("rec-p", KindMonitor, start, Mono))
	if err != nil {
		t.Fatal(err)
	}
	feed(r.rec, take.Recording, start, ps, end)
	t0 = time.Now()
	if _, err := take.Finish(start.Add(end)); err == nil || time.Since(t0) > time.Second {
		t.Fatalf("a store refusing for good: %v after %v", err, time.Since(t0))
	}
	if _, err := os.Stat(r.rec.Path("rec-p")); err != nil {
		t.Fatalf("the recording is not kept on disk: %v", err)
	}
}
