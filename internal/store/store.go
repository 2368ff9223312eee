// Package store is ivrd's metadata store: apps, numbers, the session journal, the
// notification outbox and the nodes of a cluster, in one SQLite database (modernc.org/sqlite,
// pure Go; Open, the embedded default) or in PostgreSQL (pgx; OpenPostgres), which several
// ivrd processes may share.
//
// The SQL is written once and kept portable (TEXT, BIGINT unix microseconds, BLOB, ON CONFLICT
// upserts, RETURNING, ? placeholders); the dialect (dialect.go) rewrites the little that
// differs. Query with s.exec, s.query, s.queryRow and, in a transaction, s.txExec.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned (possibly wrapped) when a looked-up row does not exist.
var ErrNotFound = errors.New("store: not found")

// Store is an open database. It is safe for concurrent use.
type Store struct {
	db    *sql.DB
	d     dialect
	stmts sync.Map // query text → *sql.Stmt
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
	s := &Store{db: db, d: sqliteDialect}
	if err := s.migrateSQLite(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return s, nil
}

// migrateSQLite migrates, trying again while another process holds the new file: SQLite
// answers SQLITE_BUSY at once, without waiting out busy_timeout, to a connection that turns a
// new file to WAL or reads the WAL index while another connection is doing the same.
func (s *Store) migrateSQLite() error {
	deadline := time.Now().Add(opTimeout)
	wait := 10 * time.Millisecond
	for {
		err := s.migrate()
		if err == nil || !busy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// busy reports whether SQLite refused for a lock another connection holds.
func busy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code() & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// Shared reports whether other ivrd processes may use the database at the same time
// (PostgreSQL); on an unshared one (SQLite) this process is the only node.
func (s *Store) Shared() bool { return s.d.shared }

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

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

// Statements are prepared once per query text and kept (sql.Stmt re-prepares on each pooled
// connection as needed): parsing and planning the SQL was most of the cost of the per-call
// statements (session journal, outbox) under load. The query texts are the constants of this
// package, so the cache is bounded. q is portable SQL (? placeholders), rewritten for the
// database by the dialect.
func (s *Store) stmt(c context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(c, s.d.query(q))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (s *Store) exec(c context.Context, q string, args ...any) (sql.Result, error) {
	st, err := s.stmt(c, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(c, args...)
}

func (s *Store) query(c context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(c, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(c, args...)
}

func (s *Store) queryRow(c context.Context, q string, args ...any) *sql.Row {
	st, err := s.stmt(c, q)
	if err != nil {
		return s.db.QueryRowContext(c, s.d.query(q), args...) // carries the same error to Scan
	}
	return st.QueryRowContext(c, args...)
}

// txExec runs q (portable SQL, as s.exec) in tx.
func (s *Store) txExec(c context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	st, err := s.stmt(c, q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(c, st).ExecContext(c, args...)
}
