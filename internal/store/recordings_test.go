package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func recIDs(rs []Recording) string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return strings.Join(ids, ",")
}

func TestRecordings(t *testing.T) { eachStore(t, testRecordings) }

func testRecordings(t *testing.T, s *Store) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	put := func(id, app, session string, started time.Duration, stored time.Time) Recording {
		r := Recording{ID: id, AppID: app, SessionID: session, Kind: "monitor", StartedAt: t0.Add(started),
			Duration: 12345678 * time.Microsecond, Size: 49152, Channels: 2, Key: id + ".mp3", StoredAt: stored}
		if err := s.PutRecording(r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	stored := t0.Add(time.Hour)
	a := put("rec-a", "A1", "S1", 0, stored)
	put("rec-b", "A1", "S1", time.Minute, stored.Add(time.Minute))
	put("rec-c", "A1", "S2", 2*time.Minute, stored.Add(2*time.Minute))
	put("rec-d", "A2", "S3", 3*time.Minute, stored.Add(3*time.Minute))

	got, err := s.Recording("rec-a")
	if err != nil || got != a {
		t.Fatalf("Recording: %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.Recording("rec-x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	for _, tc := range []struct {
		f     RecordingFilter
		want  string
		total int
	}{
		{RecordingFilter{}, "rec-d,rec-c,rec-b,rec-a", 4},
		{RecordingFilter{AppID: "A1"}, "rec-c,rec-b,rec-a", 3},
		{RecordingFilter{AppID: "A1", SessionID: "S1"}, "rec-b,rec-a", 2},
		{RecordingFilter{AppID: "A1", From: t0.Add(time.Minute)}, "rec-c,rec-b", 2},
		{RecordingFilter{AppID: "A1", To: t0.Add(2 * time.Minute)}, "rec-b,rec-a", 2},
		{RecordingFilter{AppID: "A1", From: t0.Add(time.Second), To: t0.Add(2*time.Minute + time.Second)}, "rec-c,rec-b", 2},
		{RecordingFilter{AppID: "A1", Limit: 2}, "rec-c,rec-b", 3},
		{RecordingFilter{AppID: "A1", Limit: 2, Offset: 2}, "rec-a", 3},
		{RecordingFilter{AppID: "A1", Limit: 2, Offset: 4}, "", 3},
		{RecordingFilter{AppID: "A3"}, "", 0},
	} {
		rs, total, err := s.Recordings(tc.f)
		if err != nil || recIDs(rs) != tc.want || total != tc.total {
			t.Errorf("%+v: %s (total %d), %v; want %s (%d)", tc.f, recIDs(rs), total, err, tc.want, tc.total)
		}
	}
	old, err := s.RecordingsStoredBefore(stored.Add(90*time.Second), 10)
	if err != nil || recIDs(old) != "rec-a,rec-b" {
		t.Fatalf("stored before: %s, %v", recIDs(old), err)
	}
	if old, _ := s.RecordingsStoredBefore(stored.Add(time.Hour), 1); recIDs(old) != "rec-a" {
		t.Fatalf("limit: %s", recIDs(old))
	}

	// Storing again (recovery) replaces the row.
	a.Duration, a.Size = 2*time.Second, 99
	if err := s.PutRecording(a); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Recording("rec-a"); got != a {
		t.Fatalf("replaced: %+v", got)
	}
	if err := s.DeleteRecording("rec-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRecording("rec-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Recording("rec-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	for _, bad := range []Recording{{ID: "x", Kind: "monitor"}, {Key: "x", Kind: "monitor"}, {ID: "x", Key: "x", Kind: "voicemail"}} {
		if err := s.PutRecording(bad); err == nil {
			t.Errorf("%+v stored", bad)
		}
	}
}

// TestRecordingsDefaultStoredAt: a row without StoredAt is stored now.
func TestRecordingsDefaultStoredAt(t *testing.T) { eachStore(t, testRecordingsDefaultStoredAt) }

func testRecordingsDefaultStoredAt(t *testing.T, s *Store) {
	before := time.Now().Add(-time.Second)
	for i := range 3 {
		if err := s.PutRecording(Recording{ID: fmt.Sprint("r", i), AppID: "A", SessionID: "S", Kind: "record", Key: "k", Channels: 1}); err != nil {
			t.Fatal(err)
		}
	}
	rs, _, err := s.Recordings(RecordingFilter{})
	if err != nil || len(rs) != 3 {
		t.Fatal(rs, err)
	}
	for _, r := range rs {
		if r.StoredAt.Before(before) || r.StoredAt.After(time.Now()) {
			t.Errorf("%s stored at %v", r.ID, r.StoredAt)
		}
	}
}
