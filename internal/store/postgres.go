package store

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL store goes through pgx's database/sql driver (stdlib) rather than pgxpool:
// the store is written against database/sql (prepared statements kept per query, the same
// transactions and scans for SQLite), so one Store type serves both, and database/sql's pool
// already replaces broken connections (pgx's ResetSession pings a connection idle for over a
// second before handing it out again, and reports a closed one as bad) so the store
// reconnects by itself after PostgreSQL restarts.

// connectTimeout bounds one connection attempt when the URL sets no connect_timeout.
const connectTimeout = 5 * time.Second

// OpenPostgres opens the PostgreSQL database at dsn, a URL
// "postgres://user:password@host:port/database?sslmode=disable" (libpq's parameters), and
// applies pending migrations. The database must exist; the tables are created in its search
// path (normally the schema public).
func OpenPostgres(dsn string) (*Store, error) {
	if err := CheckPostgresURL(dsn); err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", RedactURL(dsn), err)
	}
	if !strings.Contains(dsn, "connect_timeout=") {
		cfg.ConnectTimeout = connectTimeout
		cfg.DialFunc = (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, d: postgresDialect}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", RedactURL(dsn), err)
	}
	return s, nil
}

// CheckPostgresURL checks that dsn is a postgres:// (or postgresql://) URL with a host and a
// database name.
func CheckPostgresURL(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return errors.New("not a URL: want postgres://user:password@host:port/database?sslmode=disable")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("scheme %q: want postgres://user:password@host:port/database?sslmode=disable", u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return errors.New("no host: want postgres://user:password@host:port/database?sslmode=disable")
	}
	if strings.Trim(u.Path, "/") == "" {
		return errors.New("no database name: want postgres://user:password@host:port/database?sslmode=disable")
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return err // pgx leaves the password out
	}
	return nil
}

// RedactURL returns a database URL without its password, for logs and errors.
func RedactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable database URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
