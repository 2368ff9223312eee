// Package store is ivrd's metadata store: apps, numbers, the session journal and the
// notification outbox, in one SQLite database (modernc.org/sqlite, pure Go).
//
// The SQL is kept portable (TEXT, BIGINT unix microseconds, BLOB, ON CONFLICT upserts) so a
// PostgreSQL backend can follow; only Open and the pragmas are SQLite specific.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned (possibly wrapped) when a looked-up row does not exist.
var ErrNotFound = errors.New("store: not found")

// Store is an open database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// opTimeout bounds every statement so a stuck database cannot hang a caller forever.
const opTimeout = 30 * time.Second

// Open opens (creating if needed) the database file at path and applies pending migrations.
// The parent directory must exist.
func Open(path string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("store: unsupported database path %q", path)
	}
	// WAL lets readers run beside the single writer; synchronous=NORMAL is durable across
	// process crashes (not power loss of the last commits) and much faster than FULL.
	// _txlock=immediate takes the write lock at BEGIN so transactions never deadlock on upgrade.
	dsn := path + "?_busy_timeout=10000&_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=1&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// micros converts a time to the stored representation: unix microseconds, UTC.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros converts a stored time back.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// now is the current time at the stored precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// notFound maps sql.ErrNoRows to ErrNotFound, describing what was looked up.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}
