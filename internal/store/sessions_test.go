package store

import (
	"errors"
	"testing"
	"time"
)

func TestSessions(t *testing.T) { eachStore(t, testSessions) }

func testSessions(t *testing.T, s *Store) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	rows := []SessionRow{
		{ID: "S2", AppID: "AP1", State: "live", Data: []byte(`{"n":2}`), UpdatedAt: t0.Add(time.Second)},
		{ID: "S1", AppID: "AP1", State: "dialing", Data: []byte(`{"n":1}`), UpdatedAt: t0},
		{ID: "S3", AppID: "AP2", State: StateEnded, Data: []byte(`{"n":3}`), UpdatedAt: t0},
	}
	for _, r := range rows {
		if err := s.SaveSession(r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Session("S2")
	if err != nil || got.AppID != "AP1" || got.State != "live" || string(got.Data) != `{"n":2}` || !got.UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("Session = %+v, %v", got, err)
	}
	un, err := s.UnfinishedSessions()
	if err != nil || len(un) != 2 || un[0].ID != "S1" || un[1].ID != "S2" {
		t.Fatalf("UnfinishedSessions = %+v, %v", un, err)
	}
	// Upsert ends S1; a zero UpdatedAt becomes now.
	if err := s.SaveSession(SessionRow{ID: "S1", AppID: "AP1", State: StateEnded, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session("S1"); got.State != StateEnded || time.Since(got.UpdatedAt) > time.Minute {
		t.Fatalf("after upsert: %+v", got)
	}
	if un, _ := s.UnfinishedSessions(); len(un) != 1 || un[0].ID != "S2" {
		t.Fatalf("UnfinishedSessions after end = %+v", un)
	}
	if _, err := s.Session("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing session: %v", err)
	}
	if err := s.SaveSession(SessionRow{}); err == nil {
		t.Fatal("empty id accepted")
	}
	if err := s.SaveSession(SessionRow{ID: "S4", State: "live"}); err != nil {
		t.Fatalf("nil data: %v", err)
	}
}

// TestSessionEvents: a session's timeline is written with its record, in one transaction; a
// step written again (a repeated write) is kept once.
func TestSessionEvents(t *testing.T) { eachStore(t, testSessionEvents) }

func testSessionEvents(t *testing.T, s *Store) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := func(step int, name string) SessionEvent {
		return SessionEvent{Step: step, At: t0.Add(time.Duration(step) * time.Second), Event: name, Data: []byte(`{"event":"` + name + `"}`)}
	}
	if err := s.SaveSession(SessionRow{ID: "S1", AppID: "AP1", State: "ringing", Data: []byte(`{}`)}, ev(1, "incoming"), ev(2, "owe")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSession(SessionRow{ID: "S1", AppID: "AP1", State: "running", Data: []byte(`{}`)}, ev(2, "owe"), ev(3, "accept")); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionEvents("S1")
	if err != nil || len(got) != 3 {
		t.Fatalf("%+v %v", got, err)
	}
	for i, e := range got {
		if e.Step != i+1 || !e.At.Equal(t0.Add(time.Duration(i+1)*time.Second)) || string(e.Data) != `{"event":"`+e.Event+`"}` {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	if row, _ := s.Session("S1"); row.State != "running" {
		t.Fatalf("record not saved with the events: %+v", row)
	}
	if none, err := s.SessionEvents("S2"); err != nil || len(none) != 0 {
		t.Fatalf("%+v %v", none, err)
	}
}
