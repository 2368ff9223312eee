package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migrations are embedded, numbered files "NNNN_name.sql", applied in order, each in its own
// transaction together with its schema_version row. A database newer than this binary is
// refused rather than used.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations in version order; numbering must be 1, 2, 3...
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %q: want NNNN_name.sql", name)
		}
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %q: expected version %d", m.name, i+1)
		}
	}
	return out, nil
}

// migrate brings the schema up to date. On a database other processes share, it holds the
// dialect's migration lock meanwhile, so processes starting at once apply each migration once.
func (s *Store) migrate() error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	c, cancel := ctx()
	defer cancel()
	conn, err := s.db.Conn(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.d.lockMigrations != "" {
		if _, err := conn.ExecContext(c, s.d.lockMigrations); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.ExecContext(c, s.d.unlockMigrations)
	}
	if _, err := conn.ExecContext(c, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	for _, m := range ms {
		if err := s.apply(c, conn, m); err != nil {
			return err
		}
	}
	cur, err := s.SchemaVersion()
	if err != nil {
		return err
	}
	if cur > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this ivrd (%d)", cur, len(ms))
	}
	return nil
}

// apply runs one migration unless it is already recorded. The check runs inside the write
// transaction, so two processes opening the same new file cannot both apply it.
func (s *Store) apply(c context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(c, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(c, s.d.query(`SELECT COUNT(*) FROM schema_version WHERE version = ?`), m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(c, s.d.migration(m.sql)); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(c, s.d.query(`INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`), m.version, micros(now())); err != nil {
		return err
	}
	return tx.Commit()
}

// SchemaVersion reports the highest applied migration.
func (s *Store) SchemaVersion() (int, error) {
	c, cancel := ctx()
	defer cancel()
	var v int
	err := s.db.QueryRowContext(c, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}
