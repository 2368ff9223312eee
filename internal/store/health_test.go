package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// The write probe passes on a writable database, and fails while another process holds the
// database's write lock (as the sqlite3 shell can), within its timeout.
func TestCheckWritableLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivrd.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckWritable(); err != nil {
		t.Fatalf("writable database: %v", err)
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := s.CheckWritable(); err == nil {
		t.Fatal("the probe passed while another connection held the write lock")
	}
	if d := time.Since(t0); d > writeProbeTimeout+2*time.Second {
		t.Errorf("the probe took %v", d)
	} else {
		t.Logf("refused after %v", d)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(); err != nil {
		t.Fatalf("writable again: %v", err)
	}
}
