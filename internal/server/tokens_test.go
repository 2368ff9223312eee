package server

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

func TestTokenCacheFollowsRotation(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "ivrd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	app, _ := st.CreateApp("a")
	now := time.Unix(1000, 0)
	c := newTokenCache(st)
	c.now = func() time.Time { return now }
	if tok, err := c.token(app.ID); err != nil || tok != app.AccessToken {
		t.Fatalf("token = %q, %v", tok, err)
	}
	rotated, err := st.RotateToken(app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := c.token(app.ID); tok != app.AccessToken {
		t.Fatalf("within the TTL the cached token is served, got %q", tok)
	}
	now = now.Add(tokenTTL)
	if tok, _ := c.token(app.ID); tok != rotated.AccessToken {
		t.Fatalf("after the TTL: %q, want the rotated %q", tok, rotated.AccessToken)
	}
	if _, err := c.token("APnone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown app: %v", err)
	}
	if len(c.m) != 1 {
		t.Fatalf("misses cached: %v", c.m)
	}
}
