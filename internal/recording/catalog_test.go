package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
)

// session makes a session of app known, as the engine's journal does before any recording.
func (r *archiveRig) session(t *testing.T, id, app string) {
	t.Helper()
	r.idx.AddSession(id, app)
}

// TestCatalog: apps see, fetch and delete only their own recordings; a deleted recording's
// file is gone and its signed URL answers 404.
func TestCatalog(t *testing.T) {
	r := newArchiveRig(t)
	r.session(t, "S1", "A1")
	r.session(t, "S2", "A2")
	u1, _ := r.storeTake(t, Info{ID: "rec-1", AppID: "A1", SessionID: "S1"})
	r.storeTake(t, Info{ID: "rec-2", AppID: "A1", SessionID: "S1"})
	r.storeTake(t, Info{ID: "rec-3", AppID: "A2", SessionID: "S2"})
	c := r.catalog

	ids := func(rs []Entry) string {
		var s []string
		for _, x := range rs {
			s = append(s, x.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		f     Filter
		want  string
		total int
		err   error
	}{
		{Filter{AppID: "A1"}, "rec-2,rec-1", 2, nil},
		{Filter{AppID: "A1", SessionID: "S1", Limit: 1}, "rec-2", 2, nil},
		{Filter{AppID: "A1", SessionID: "S2"}, "", 0, ErrOtherApp},
		{Filter{AppID: "A1", SessionID: "S9"}, "", 0, ErrNotFound},
		{Filter{SessionID: "S2"}, "rec-3", 1, nil}, // any app: the operator
	} {
		rs, total, err := c.List(tc.f)
		if !errors.Is(err, tc.err) || ids(rs) != tc.want || total != tc.total {
			t.Errorf("List(%+v): %s (%d), %v; want %s (%d), %v", tc.f, ids(rs), total, err, tc.want, tc.total, tc.err)
		}
	}

	row, u, err := c.Get("A1", "rec-1")
	if err != nil || row.ID != "rec-1" || row.AppID != "A1" || !strings.Contains(u, "/recordings/rec-1.mp3?Expires=") {
		t.Fatalf("Get: %+v %q %v", row, u, err)
	}
	if _, _, err := c.Get("A2", "rec-1"); !errors.Is(err, ErrOtherApp) {
		t.Fatalf("another app's Get: %v", err)
	}
	if _, _, err := c.Get("A1", "rec-9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown Get: %v", err)
	}
	if err := c.Delete("A2", "rec-1"); !errors.Is(err, ErrOtherApp) {
		t.Fatalf("another app's Delete: %v", err)
	}

	// Open: the entry and its file, for its own app or the operator.
	if e, obj, err := c.Open(context.Background(), "A1", "rec-1"); err != nil || e.ID != "rec-1" || obj.Size == 0 {
		t.Fatalf("Open: %+v %v", e, err)
	} else {
		obj.Close()
	}
	if _, _, err := c.Open(context.Background(), "A2", "rec-1"); !errors.Is(err, ErrOtherApp) {
		t.Fatalf("another app's Open: %v", err)
	}
	if _, obj, err := c.Open(context.Background(), "", "rec-3"); err != nil {
		t.Fatalf("the operator's Open: %v", err)
	} else {
		obj.Close()
	}

	mux := http.NewServeMux()
	mux.Handle(blob.PathPrefix, blob.Handler(r.blobs, r.signer, slog.New(slog.DiscardHandler)))
	get := func(u string) int {
		req := httptest.NewRequest(http.MethodGet, strings.TrimPrefix(u, "http://ivrd.test"), nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	if code := get(u1); code != 200 {
		t.Fatalf("URL before delete: %d", code)
	}
	if err := c.Delete("A1", "rec-1"); err != nil {
		t.Fatal(err)
	}
	if code := get(u1); code != 404 {
		t.Fatalf("the first URL after delete: %d, want 404", code)
	}
	if code := get(u); code != 404 {
		t.Fatalf("a fresh URL after delete: %d, want 404", code)
	}
	if _, _, err := c.Get("A1", "rec-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
	if err := c.Delete("A1", "rec-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, _, err := c.Open(context.Background(), "A1", "rec-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after delete: %v", err)
	}
	if err := c.Delete("", "rec-3"); err != nil { // the operator deletes any app's
		t.Fatal(err)
	}
}

// TestCatalogRetention: with a retention, recordings stored longer ago than that are deleted
// (file and row) by the catalog itself, and fresh ones are kept; Expire takes them in batches.
func TestCatalogRetention(t *testing.T) {
	r := newArchiveRigWith(t, 2*time.Second)
	r.storeTake(t, Info{ID: "rec-old", AppID: "A1", SessionID: "S1"})
	// Many old rows without files (more than one batch), and a fresh recording.
	old := time.Now().Add(-time.Hour)
	for i := range expireBatch + 20 {
		if err := r.idx.Put(Entry{ID: fmt.Sprintf("rec-row%03d", i),
			AppID: "A1", SessionID: "S1", Kind: KindRecord, Key: "none.mp3", Stored: old}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if rs, _, _ := r.idx.List(Filter{}); len(rs) == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rs, _, _ := r.idx.List(Filter{})
	if len(rs) != 1 || rs[0].ID != "rec-old" {
		t.Fatalf("after the first sweep: %d rows", len(rs))
	}
	time.Sleep(1500 * time.Millisecond)
	r.storeTake(t, Info{ID: "rec-new", AppID: "A1", SessionID: "S1"})
	deadline = time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.idx.Get("rec-old"); errors.Is(err, ErrNotFound) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := r.idx.Get("rec-old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired recording is still listed: %v", err)
	}
	if _, err := r.blobs.Open(context.Background(), "rec-old.mp3"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("an expired recording's file is still stored: %v", err)
	}
	if _, err := r.idx.Get("rec-new"); err != nil {
		t.Fatalf("a fresh recording was deleted: %v", err)
	}
	if f, err := r.blobs.Open(context.Background(), "rec-new.mp3"); err != nil {
		t.Fatalf("a fresh recording's file was deleted: %v", err)
	} else {
		f.Close()
	}
}

func TestSweepEvery(t *testing.T) {
	for retention, want := range map[time.Duration]time.Duration{
		2 * time.Second: time.Second, time.Minute: 6 * time.Second, 30 * 24 * time.Hour: 10 * time.Minute,
	} {
		if got := sweepEvery(retention); got != want {
			t.Errorf("sweepEvery(%v) = %v, want %v", retention, got, want)
		}
	}
	if _, err := NewCatalog(CatalogConfig{}); err == nil {
		t.Error("a catalog without parts")
	}
	if _, err := NewCatalog(CatalogConfig{Index: &MemIndex{}, Blobs: &blob.Local{}, Retention: -time.Second}); err == nil {
		t.Error("a negative retention")
	}
}

// stuckBlobs cannot delete one key.
type stuckBlobs struct {
	*blob.Local
	stuck string
}

func (b stuckBlobs) Delete(key string) error {
	if key == b.stuck {
		return errors.New("permission denied")
	}
	return b.Local.Delete(key)
}

// TestExpireGoesPastFailures: a recording that cannot be deleted does not hold up the others,
// and is reported (and stays listed, for the next sweep).
func TestExpireGoesPastFailures(t *testing.T) {
	idx := &MemIndex{}
	c, err := NewCatalog(CatalogConfig{Index: idx, Blobs: stuckBlobs{&blob.Local{Dir: t.TempDir()}, "rec-stuck.mp3"}})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for i := range expireBatch + 5 {
		id := fmt.Sprintf("rec-%03d", i)
		if i == 3 {
			id = "rec-stuck"
		}
		if err := idx.Put(Entry{ID: id, AppID: "A1", SessionID: "S1", Kind: KindRecord, Key: id + ".mp3", Stored: old.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.Expire(time.Now())
	if n != expireBatch+4 || err == nil || !strings.Contains(err.Error(), "rec-stuck") {
		t.Fatalf("expired %d, %v; want all but rec-stuck, and its error", n, err)
	}
	if rs, total, _ := idx.List(Filter{}); total != 1 || rs[0].ID != "rec-stuck" {
		t.Fatalf("left listed: %v", rs)
	}
}
