package recording

import (
	"cmp"
	"context"
	"errors"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/blob"
)

// archiveRig is an Archive over a manual recorder, a real blob store and signer, and a
// catalog (its index in memory: the store's is tested with the database in internal/server).
type archiveRig struct {
	a       *Archive
	rec     *Recorder
	blobs   *blob.Local
	signer  blob.Signer
	idx     *MemIndex
	catalog *Catalog
}

func newArchiveRig(t *testing.T) *archiveRig {
	t.Helper()
	return newArchiveRigWith(t, 0)
}

// newArchiveRigWith makes an archiveRig whose catalog keeps recordings for retention.
func newArchiveRigWith(t *testing.T, retention time.Duration) *archiveRig {
	t.Helper()
	r := &archiveRig{rec: manualRecorder(t), blobs: &blob.Local{Dir: t.TempDir()},
		signer: blob.Signer{Secret: []byte("0123456789abcdef0123456789abcdef"), BaseURL: "http://ivrd.test"}, idx: &MemIndex{}}
	var err error
	if r.catalog, err = NewCatalog(CatalogConfig{Index: r.idx, Blobs: r.blobs, Signer: r.signer, Retention: retention}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.catalog.Close() })
	a, err := NewArchive(ArchiveConfig{Recorder: r.rec, Blobs: r.blobs, Signer: r.signer, Catalog: r.catalog})
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	return r
}

// info describes recording id of session S1 of app A1.
func info(id, kind string, start time.Time, channels int) Info {
	return Info{ID: id, AppID: "A1", SessionID: "S1", Kind: kind, Start: start, Channels: channels}
}

// checkRow asserts that the catalog lists recording id as want says, its length near length.
func (r *archiveRig) checkRow(t *testing.T, want Info, length time.Duration) Entry {
	t.Helper()
	row, err := r.idx.Get(want.ID)
	if err != nil {
		t.Fatalf("not catalogued: %v", err)
	}
	st, err := os.Stat(filepath.Join(r.blobs.Dir, want.ID+".mp3"))
	if err != nil {
		t.Fatal(err)
	}
	if row.AppID != want.AppID || row.SessionID != want.SessionID || row.Kind != want.Kind || row.Channels != want.Channels ||
		row.Key != want.ID+".mp3" || row.Size != st.Size() || !near(row.Duration, length, 80*ms) ||
		!near(row.Started.Sub(want.Start), 0, 100*ms) || time.Since(row.Stored) > time.Minute {
		t.Fatalf("catalogued as %+v; want %+v, %v long, %d bytes", row, want, length, st.Size())
	}
	return row
}

// checkURL asserts that u is a valid signed URL of recording id's blob and returns its file.
func (r *archiveRig) checkURL(t *testing.T, id, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	key := path.Base(p.Path)
	q := p.Query()
	if key != id+".mp3" || !r.signer.Verify(key, q.Get("Expires"), q.Get("Signature"), time.Now()) {
		t.Fatalf("URL %s does not sign %s.mp3", u, id)
	}
	f, err := r.blobs.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("not in the blob store: %v", err)
	}
	f.Close()
	return filepath.Join(r.blobs.Dir, key)
}

// toneCall is a 2 s call whose caller sends 1 kHz from 0.5 s to 1.5 s.
func toneCall() ([]packet, time.Duration) {
	return frames(false, 1000, 500*ms, time.Second), 2 * time.Second
}

// checkTone decodes the MP3 at p with every decoder and finds the caller's tone where it was.
func checkTone(t *testing.T, p string) {
	t.Helper()
	for name, pcm := range decodeAll(t, p) {
		if d := audio.Duration(len(pcm)); !near(d, 2*time.Second, 150*ms) {
			t.Errorf("%s: decoded %v, want about 2 s", name, d)
		}
		checkSpans(t, pcm, 1000, audio.Span{Start: 500 * ms, End: 1500 * ms}, 60*ms)
	}
}

// storeTake records the tone call as in (a Monitor's, mono, starting now when those are not
// set), stores it and returns its URL and what it was started as.
func (r *archiveRig) storeTake(t *testing.T, in Info) (string, Info) {
	t.Helper()
	in.Kind, in.Channels, in.Start = cmp.Or(in.Kind, KindMonitor), cmp.Or(in.Channels, Mono), cmp.Or(in.Start, time.Now())
	take, err := r.a.Start(in)
	if err != nil {
		t.Fatal(err)
	}
	ps, end := toneCall()
	feed(r.rec, take.Recording, in.Start, ps, end)
	u, err := take.Finish(in.Start.Add(end))
	if err != nil {
		t.Fatal(err)
	}
	return u, in
}

// TestArchiveFinish: a finished recording moves into the blob store, comes back as a signed URL,
// and decodes to the call that was recorded; nothing is left in the recorder's directory.
func TestArchiveFinish(t *testing.T) {
	r := newArchiveRig(t)
	u, in := r.storeTake(t, info("rec-fin", KindMonitor, time.Now(), Mono))
	checkTone(t, r.checkURL(t, "rec-fin", u))
	_, end := toneCall()
	r.checkRow(t, in, end)
	if ents, _ := os.ReadDir(r.rec.Dir()); len(ents) != 0 {
		t.Fatalf("left in the recorder's directory: %v", ents)
	}
}

// TestArchiveDiscard: a discarded recording (its session went to another node) is neither
// stored nor catalogued, and leaves nothing in the recorder's directory; finishing it after is
// refused.
func TestArchiveDiscard(t *testing.T) {
	r := newArchiveRig(t)
	in := info("rec-discard", KindMonitor, time.Now(), Mono)
	take, err := r.a.Start(in)
	if err != nil {
		t.Fatal(err)
	}
	ps, end := toneCall()
	feed(r.rec, take.Recording, in.Start, ps, end)
	take.Discard()
	take.Discard() // twice is harmless
	if ents, _ := os.ReadDir(r.rec.Dir()); len(ents) != 0 {
		t.Fatalf("left in the recorder's directory: %v", ents)
	}
	if ents, _ := os.ReadDir(r.blobs.Dir); len(ents) != 0 {
		t.Fatalf("stored: %v", ents)
	}
	if _, err := r.idx.Get(in.ID); err == nil {
		t.Fatal("a discarded recording is catalogued")
	}
	if u, err := take.Finish(time.Now()); u != "" || !errors.Is(err, ErrFinished) {
		t.Fatalf("Finish after Discard = %q, %v", u, err)
	}
}

// recordMP3 records the tone call with a separate recorder and returns the MP3's bytes.
func recordMP3(t *testing.T) []byte {
	t.Helper()
	r := manualRecorder(t)
	start := time.Now()
	rec, err := r.Start("src", start, Mono)
	if err != nil {
		t.Fatal(err)
	}
	ps, end := toneCall()
	res := simulate(t, r, rec, start, ps, end)
	b, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestArchiveRecover finds a recording again in each state a crash can leave it in.
func TestArchiveRecover(t *testing.T) {
	mp3 := recordMP3(t)
	cases := []struct {
		name  string
		leave func(t *testing.T, r *archiveRig, id string) // what the crash left
		found bool                                         // a URL comes back
	}{
		{"being written (a partial last frame)", func(t *testing.T, r *archiveRig, id string) {
			write(t, r.rec.PartPath(id), append(append([]byte(nil), mp3...), mp3[:100]...))
		}, true},
		{"finished, not stored", func(t *testing.T, r *archiveRig, id string) {
			write(t, r.rec.Path(id), mp3)
		}, true},
		{"stored, notification not sent", func(t *testing.T, r *archiveRig, id string) {
			p := filepath.Join(t.TempDir(), "x.mp3")
			write(t, p, mp3)
			if err := r.blobs.PutFile(id+".mp3", p); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"never written", func(t *testing.T, r *archiveRig, id string) {}, false},
		{"nothing recorded (no whole frame)", func(t *testing.T, r *archiveRig, id string) {
			write(t, r.rec.PartPath(id), mp3[:50])
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newArchiveRig(t)
			c.leave(t, r, "rec-x")
			start := time.Now().Add(-time.Minute)
			u, length, err := r.a.Recover(info("rec-x", KindRecord, start, 0))
			if err != nil {
				t.Fatal(err)
			}
			if !c.found {
				if u != "" || length != 0 {
					t.Fatalf("got %q, %v; want nothing", u, length)
				}
				if _, err := r.blobs.Open(context.Background(), "rec-x.mp3"); err == nil {
					t.Fatal("an empty recording was stored")
				}
				if _, err := r.idx.Get("rec-x"); err == nil {
					t.Fatal("an empty recording was catalogued")
				}
				return
			}
			if !near(length, 2*time.Second, 150*ms) {
				t.Fatalf("length %v, want about 2 s", length)
			}
			checkTone(t, r.checkURL(t, "rec-x", u))
			if ents, _ := os.ReadDir(r.rec.Dir()); len(ents) != 0 {
				t.Fatalf("left in the recorder's directory: %v", ents)
			}
			r.checkRow(t, info("rec-x", KindRecord, start, Mono), length)
			// Recovering again (a second crash before the session was journaled) signs it
			// again; without a known start, the file's last write less its length is taken.
			if u2, l2, err := r.a.Recover(info("rec-x", KindRecord, time.Time{}, 0)); err != nil || u2 == "" || l2 != length {
				t.Fatalf("second recovery: %q %v %v", u2, l2, err)
			}
			st, _ := os.Stat(filepath.Join(r.blobs.Dir, "rec-x.mp3"))
			r.checkRow(t, info("rec-x", KindRecord, st.ModTime().Add(-length), Mono), length)
		})
	}
}

// failingBlobs refuses to store.
type failingBlobs struct{ *blob.Local }

func (failingBlobs) PutFile(string, string) error { return errors.New("disk full") }

// TestArchiveRecoverStoreFails: a recording that cannot be stored is an error, and stays on
// disk for the next attempt.
func TestArchiveRecoverStoreFails(t *testing.T) {
	r := newArchiveRig(t)
	a, err := NewArchive(ArchiveConfig{Recorder: r.rec, Blobs: failingBlobs{r.blobs}, Signer: r.signer})
	if err != nil {
		t.Fatal(err)
	}
	write(t, r.rec.Path("rec-y"), recordMP3(t))
	if _, _, err := a.Recover(info("rec-y", KindMonitor, time.Now(), 0)); err == nil {
		t.Fatal("no error")
	}
	if u, _, err := r.a.Recover(info("rec-y", KindMonitor, time.Now(), 0)); err != nil || u == "" {
		t.Fatalf("the next attempt: %q %v", u, err)
	}
}

func TestNewArchiveNeedsItsParts(t *testing.T) {
	if _, err := NewArchive(ArchiveConfig{}); err == nil {
		t.Fatal("no error")
	}
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
}
