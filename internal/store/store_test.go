package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpg"
)

func TestMain(m *testing.M) { os.Exit(testpg.Main(m)) }

// backend opens one test's database: a new SQLite file or a new PostgreSQL database.
type backend struct {
	name string
	open func() (*Store, error) // the same database on every call
}

// store opens the backend's database, closed when the test ends.
func (b backend) store(t *testing.T) *Store {
	t.Helper()
	s, err := b.open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachBackend runs test against a fresh SQLite database and a fresh PostgreSQL database.
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ivrd.db")
		test(t, backend{"sqlite", func() (*Store, error) { return Open(path) }})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testpg.DSN(t)
		test(t, backend{"postgres", func() (*Store, error) { return OpenPostgres(dsn) }})
	})
}

// eachStore runs test against a fresh store of each backend.
func eachStore(t *testing.T, test func(t *testing.T, s *Store)) {
	eachBackend(t, func(t *testing.T, b backend) { test(t, b.store(t)) })
}

// asNodes runs f at once as n nodes ("n0", "n1", ...), each on its own store (its own
// connections) of b's database, and fails t with what they return.
func asNodes(t *testing.T, b backend, n int, f func(st *Store, node string) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		st, node := b.store(t), fmt.Sprint("n", i)
		wg.Go(func() { errs <- f(st, node) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// openSQLite opens a fresh SQLite store for the tests of what only SQLite has.
func openSQLite(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ivrd.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.store(t)
		ms, err := migrations()
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.SchemaVersion()
		if err != nil || v != len(ms) || v < 4 {
			t.Fatalf("schema version %d, %v; want %d", v, err, len(ms))
		}
		a, err := s.CreateApp("one")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		// Reopening must neither re-run migrations (CREATE TABLE would fail) nor lose data.
		s2 := b.store(t)
		if got, err := s2.App(a.ID); err != nil || got != a {
			t.Fatalf("after reopen: %+v, %v; want %+v", got, err, a)
		}
		var n int
		if err := s2.db.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != len(ms) {
			t.Fatalf("schema_version rows %d, %v", n, err)
		}
	})
}

// Processes starting at once on a new database apply each migration once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		const n = 4
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				s, err := b.open()
				if err != nil {
					errs <- err
					return
				}
				s.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		s := b.store(t)
		ms, _ := migrations()
		var rows int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil || rows != len(ms) {
			t.Fatalf("schema_version rows %d, %v; want %d", rows, err, len(ms))
		}
	})
}

func TestOpenPragmas(t *testing.T) {
	s, _ := openSQLite(t)
	var mode string
	var sync, busy, fk int
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 1 {
		t.Fatalf("synchronous %d, %v; want 1 (NORMAL)", sync, err)
	}
	if err := s.db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil || busy < 1000 {
		t.Fatalf("busy_timeout %d, %v", busy, err)
	}
	if err := s.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys %d, %v", fk, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.store(t)
		if _, err := s.db.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (999, 0)`); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s2, err := b.open(); err == nil {
			s2.Close()
			t.Fatal("opened a database with a newer schema")
		}
	})
}

func TestOpenBadPath(t *testing.T) {
	for _, p := range []string{"", "x.db?mode=ro", "file:x.db", filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if s, err := Open(p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	eachStore(t, testConcurrentWriters)
}

func testConcurrentWriters(t *testing.T, s *Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				r := SessionRow{ID: "s" + string(rune('a'+g)) + string(rune('a'+i)), AppID: "AP1", State: "live", Data: []byte("{}")}
				if err := s.SaveSession(r); err != nil {
					errs <- err
				}
				if _, err := s.Session(r.ID); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rows, err := s.UnfinishedSessions()
	if err != nil || len(rows) != 200 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
}

func TestApps(t *testing.T) {
	eachStore(t, testApps)
}

func testApps(t *testing.T, s *Store) {
	if n, err := s.CountApps(); err != nil || n != 0 {
		t.Fatalf("CountApps = %d, %v", n, err)
	}
	a, err := s.CreateApp("  demo ")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateApp("other")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.ID, "AP") || len(a.ID) != 22 || a.ID == b.ID {
		t.Errorf("ids %q %q", a.ID, b.ID)
	}
	if len(a.AccessToken) < 32 || a.AccessToken == b.AccessToken {
		t.Errorf("tokens %q %q", a.AccessToken, b.AccessToken)
	}
	if a.Name != "demo" || time.Since(a.CreatedAt) > time.Minute {
		t.Errorf("app %+v", a)
	}
	got, err := s.App(a.ID)
	if err != nil || got != a {
		t.Fatalf("App = %+v, %v; want %+v", got, err, a)
	}
	if n, err := s.CountApps(); err != nil || n != 2 {
		t.Fatalf("CountApps = %d, %v", n, err)
	}
	if _, err := s.App("APnope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown app: %v", err)
	}
	if _, err := s.CreateApp(" "); err == nil {
		t.Fatal("empty name accepted")
	}
}
