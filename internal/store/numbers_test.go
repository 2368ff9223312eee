package store

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeNumber(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"6561234567", "+6561234567", true},
		{"+6561234567", "+6561234567", true},
		{" +65 6123-4567 ", "+6561234567", true},
		{"(65) 6123.4567", "+6561234567", true},
		{"1", "+1", true},
		{"123456789012345", "+123456789012345", true},
		{"1234567890123456", "", false},
		{"", "", false},
		{"+", "", false},
		{"++65", "", false},
		{"65+1", "", false},
		{"alice", "", false},
		{"65\x00", "", false},
		{"６５", "", false}, // full-width digits are not digits here
	} {
		got, err := NormalizeNumber(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeNumber(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadNumber) {
			t.Errorf("NormalizeNumber(%q): error %v does not wrap ErrBadNumber", tc.in, err)
		}
	}
}

func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"6561234567", "+65 6123-4567", "alice", "+", "(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeNumber(s)
		if err != nil {
			return
		}
		if got[0] != '+' || len(got) < 2 || len(got) > 16 || strings.Trim(got[1:], "0123456789") != "" {
			t.Fatalf("NormalizeNumber(%q) = %q", s, got)
		}
		if again, err := NormalizeNumber(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, got, again, err)
		}
	})
}

func TestNumbers(t *testing.T) { eachStore(t, testNumbers) }

func testNumbers(t *testing.T, s *Store) {
	a, _ := s.CreateApp("a")
	b, _ := s.CreateApp("b")
	if err := s.AddNumber(Number{Number: "6561234567", AppID: a.ID, NotifyURL: "http://a/n"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"6561234567", "+6561234567", "+65 6123 4567"} {
		n, err := s.LookupNumber(q)
		if err != nil || n != (Number{Number: "+6561234567", AppID: a.ID, NotifyURL: "http://a/n"}) {
			t.Errorf("LookupNumber(%q) = %+v, %v", q, n, err)
		}
	}
	// Upsert: the same number in the other spelling moves to app b.
	if err := s.AddNumber(Number{Number: "+6561234567", AppID: b.ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.LookupNumber("6561234567"); err != nil || n.AppID != b.ID || n.NotifyURL != "" {
		t.Errorf("after upsert: %+v, %v", n, err)
	}
	for _, q := range []string{"6500000000", "alice", ""} {
		if _, err := s.LookupNumber(q); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupNumber(%q): %v; want ErrNotFound", q, err)
		}
	}
	if err := s.AddNumber(Number{Number: "6599999999", AppID: "APunknown"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown app: %v", err)
	}
	if err := s.AddNumber(Number{Number: "bob", AppID: a.ID}); !errors.Is(err, ErrBadNumber) {
		t.Errorf("bad number: %v", err)
	}
}

func TestListAndRemoveNumbers(t *testing.T) { eachStore(t, testListAndRemoveNumbers) }

func testListAndRemoveNumbers(t *testing.T, s *Store) {
	a, _ := s.CreateApp("a")
	for _, n := range []string{"+6590000002", "6590000001"} {
		if err := s.AddNumber(Number{Number: n, AppID: a.ID, NotifyURL: "http://a/" + n}); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := s.Numbers()
	if err != nil || len(ns) != 2 || ns[0].Number != "+6590000001" || ns[1].Number != "+6590000002" || ns[0].NotifyURL != "http://a/6590000001" {
		t.Fatalf("Numbers() = %+v, %v", ns, err)
	}
	if err := s.RemoveNumber("6590000001"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupNumber("+6590000001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed number still routed: %v", err)
	}
	if err := s.RemoveNumber("+6590000001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if err := s.RemoveNumber("bob"); !errors.Is(err, ErrBadNumber) {
		t.Fatalf("bad number: %v", err)
	}
	if ns, _ := s.Numbers(); len(ns) != 1 {
		t.Fatalf("left %+v", ns)
	}
}

func TestListAppsAndRotateToken(t *testing.T) { eachStore(t, testListAppsAndRotateToken) }

func testListAppsAndRotateToken(t *testing.T, s *Store) {
	a, _ := s.CreateApp("first")
	b, _ := s.CreateApp("second")
	apps, err := s.Apps()
	if err != nil || len(apps) != 2 || apps[0].ID != a.ID || apps[1].ID != b.ID || apps[0].AccessToken != a.AccessToken {
		t.Fatalf("Apps() = %+v, %v", apps, err)
	}
	r, err := s.RotateToken(a.ID)
	if err != nil || r.AccessToken == a.AccessToken || len(r.AccessToken) != 48 {
		t.Fatalf("RotateToken = %+v, %v", r, err)
	}
	if got, _ := s.App(a.ID); got.AccessToken != r.AccessToken {
		t.Fatalf("stored token %q, want %q", got.AccessToken, r.AccessToken)
	}
	if got, _ := s.App(b.ID); got.AccessToken != b.AccessToken {
		t.Fatal("rotating one app changed another")
	}
	if _, err := s.RotateToken("APnope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown app: %v", err)
	}
}
