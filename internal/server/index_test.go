package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
)

// indexScript runs the same operations on an Index and describes every answer, so that the
// store's index (the database) and recording.MemIndex (which the recording and api tests use)
// can be held to the same behaviour.
func indexScript(t *testing.T, x recording.Index) string {
	t.Helper()
	var out []string
	say := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	ids := func(es []recording.Entry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.ID)
		}
		return strings.Join(s, ",")
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	stored := t0.Add(time.Hour)
	for i, id := range []string{"rec-a", "rec-b", "rec-c", "rec-d", "rec-e"} {
		app, session := "A1", fmt.Sprint("S", i%2+1)
		if i == 4 {
			app, session = "A2", "S3"
		}
		started := t0.Add(time.Duration(i/2) * time.Minute) // rec-a and rec-b start together: id decides
		e := recording.Entry{ID: id, AppID: app, SessionID: session, Kind: recording.KindMonitor, Started: started,
			Duration: 1500 * time.Millisecond, Size: 4096, Channels: recording.Dual, Key: id + ".mp3", Stored: stored.Add(time.Duration(i) * time.Second)}
		if err := x.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	e, err := x.Get("rec-c")
	say("get %s %s %s %s %v %v %d %d %s %v", e.ID, e.AppID, e.SessionID, e.Kind, e.Started.UTC(), e.Duration, e.Size, e.Channels, e.Key, err)
	_, err = x.Get("rec-z")
	say("get unknown: %v", errors.Is(err, recording.ErrNotFound))
	for _, f := range []recording.Filter{
		{}, {AppID: "A1"}, {AppID: "A1", SessionID: "S1"}, {From: t0.Add(time.Minute)}, {To: t0.Add(time.Minute)},
		{AppID: "A1", Limit: 2}, {AppID: "A1", Limit: 2, Offset: 2}, {AppID: "A1", Limit: 2, Offset: 9},
	} {
		es, total, err := x.List(f)
		say("list %+v: %s (%d) %v", f, ids(es), total, err)
	}
	es, err := x.StoredBefore(stored.Add(2500*time.Millisecond), 2)
	say("stored before: %s %v", ids(es), err)
	if err := x.Put(recording.Entry{ID: "rec-a", AppID: "A1", SessionID: "S1", Kind: recording.KindRecord, Started: t0,
		Duration: time.Second, Size: 1, Channels: recording.Mono, Key: "rec-a.mp3", Stored: stored}); err != nil {
		t.Fatal(err)
	}
	e, _ = x.Get("rec-a")
	say("replaced: %s %d %d", e.Kind, e.Size, e.Channels)
	say("delete: %v", x.Delete("rec-a"))
	say("delete again: %v", errors.Is(x.Delete("rec-a"), recording.ErrNotFound))
	app, err := x.SessionApp("S1")
	say("session S1: %s %v", app, err)
	_, err = x.SessionApp("S9")
	say("session unknown: %v", errors.Is(err, recording.ErrNotFound))
	return strings.Join(out, "\n")
}

// TestIndexMatchesMemIndex: the catalog's index in the database answers exactly as the
// in-memory one the other packages' tests use.
func TestIndexMatchesMemIndex(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "ivrd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mem := &recording.MemIndex{}
	for _, s := range []struct{ id, app string }{{"S1", "A1"}, {"S2", "A1"}, {"S3", "A2"}} {
		mem.AddSession(s.id, s.app)
		if err := st.SaveSession(store.SessionRow{ID: s.id, AppID: s.app, State: "ended", Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	db, want := indexScript(t, index{st}), indexScript(t, mem)
	if db != want {
		t.Fatalf("the database index answers\n%s\nthe memory index\n%s", db, want)
	}
	t.Logf("both answer:\n%s", db)
}

// TestCatalogWithTheStore: the catalog over the database, as ivrd and its admin commands run
// it: what an app stores is listed, deleted (file and row), and expired by the retention.
func TestCatalogWithTheStore(t *testing.T) {
	data := t.TempDir()
	err := WithStore(data, "", func(st *store.Store) error {
		if err := st.SaveSession(store.SessionRow{ID: "S1", AppID: "A1", State: "ended", Data: []byte("{}")}); err != nil {
			return err
		}
		blobs := localBlobs(data)
		for i, id := range []string{"rec-old", "rec-new"} {
			src := filepath.Join(t.TempDir(), "x")
			if err := os.WriteFile(src, []byte("mp3"), 0o644); err != nil {
				return err
			}
			if err := blobs.PutFile(id+".mp3", src); err != nil {
				return err
			}
			storedAt := time.Now().Add(-time.Duration(1-i) * time.Hour) // rec-old an hour ago
			if err := st.PutRecording(store.Recording{ID: id, AppID: "A1", SessionID: "S1", Kind: recording.KindRecord, Key: id + ".mp3",
				Channels: 1, StartedAt: storedAt, StoredAt: storedAt}); err != nil {
				return err
			}
		}
		c, err := recording.NewCatalog(recording.CatalogConfig{Index: index{st}, Blobs: blobs, Retention: 30 * time.Minute})
		if err != nil {
			return err
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := st.Recording("rec-old"); errors.Is(err, store.ErrNotFound) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.Close()
		if _, err := blobs.Open(context.Background(), "rec-old.mp3"); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("the expired recording's file: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = WithCatalog(data, "", config.Blob{}, slog.New(slog.DiscardHandler), func(c *recording.Catalog) error {
		es, total, err := c.List(recording.Filter{AppID: "A1", SessionID: "S1"})
		if err != nil || total != 1 || es[0].ID != "rec-new" {
			t.Errorf("listed %+v (%d), %v; want rec-new only", es, total, err)
		}
		if _, _, err := c.List(recording.Filter{AppID: "A2", SessionID: "S1"}); !errors.Is(err, recording.ErrOtherApp) {
			t.Errorf("another app's session: %v", err)
		}
		if err := c.Delete("", "rec-new"); err != nil {
			return err
		}
		if err := c.Delete("", "rec-new"); !errors.Is(err, recording.ErrNotFound) {
			t.Errorf("deleted twice: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localBlobs(data).Open(context.Background(), "rec-new.mp3"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("the deleted recording's file: %v", err)
	}
}
