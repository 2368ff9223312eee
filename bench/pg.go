package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// pgServer is the cluster phase's throwaway PostgreSQL server, run by the project's
// scripts/pg.sh (Debian's postgresql package; initdb and pg_ctl as the postgres user, trust
// authentication on loopback, fsync off as in the tests).
type pgServer struct {
	dir     string   // the cluster's directory (scripts/pg.sh DIR)
	dsn     *url.URL // the "postgres" database
	admin   *sql.DB
	version string
}

// pgScript is scripts/pg.sh; the bench runs from the repository root.
const pgScript = "scripts/pg.sh"

// checkPostgres says why the cluster phase cannot start PostgreSQL here, or nil.
func checkPostgres() error {
	if os.Geteuid() != 0 {
		return errors.New("the cluster phase runs PostgreSQL through scripts/pg.sh, as root (initdb and pg_ctl run as the postgres user)")
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(m) == 0 && os.Getenv("PG_BIN") == "" {
		return errors.New("the cluster phase needs PostgreSQL's server binaries (Debian package postgresql; scripts/install-deps.sh bench installs it)")
	}
	return nil
}

// startPostgres starts a server in a new directory of its own: not under the bench's scratch
// directory, which the postgres user cannot reach.
func startPostgres() (*pgServer, error) {
	dir, err := os.MkdirTemp("", "ivrd-bench-pg-")
	if err != nil {
		return nil, err
	}
	s := &pgServer{dir: dir}
	out, err := exec.Command(pgScript, "start", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		s.stop()
		return nil, fmt.Errorf("%s start: %w", pgScript, err)
	}
	if s.dsn, err = url.Parse(strings.TrimSpace(string(out))); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s start printed %q: %w", pgScript, out, err)
	}
	if s.admin, err = sql.Open("pgx", s.dsn.String()); err != nil {
		s.stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin.QueryRowContext(ctx, "SHOW server_version").Scan(&s.version); err != nil {
		s.stop()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// database creates an empty database and returns its URL.
func (s *pgServer) database(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("postgres: create database %s: %w", name, err)
	}
	u := *s.dsn
	u.Path = "/" + name
	return u.String(), nil
}

// pid is the postmaster's process: the first line of its postmaster.pid. Every other server
// process (a backend per connection, the background workers) is its child.
func (s *pgServer) pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// stop stops the server and removes its directory.
func (s *pgServer) stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	_ = exec.Command(pgScript, "stop", s.dir).Run()
}
