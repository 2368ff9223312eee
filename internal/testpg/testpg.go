// Package testpg gives tests a real, throwaway PostgreSQL server (Debian's postgresql package,
// run by scripts/pg.sh): one server per test binary, started on first use on a free loopback
// port, and a fresh empty database per test. (The benchmark starts its own Server with New.) A test binary that uses it wraps its tests in
// Main, which stops and removes the server when the tests are done:
//
//	func TestMain(m *testing.M) { os.Exit(testpg.Main(m)) }
//
// Tests skip, saying why, when PostgreSQL cannot run here (its binaries are missing, or the
// tests run neither as root nor as the postgres user). When it should run and does not start,
// they fail.
package testpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// server is the test binary's PostgreSQL, started by the first test that asks for one.
var server struct {
	once    sync.Once
	s       *Server
	skip    string // why PostgreSQL cannot run here
	err     error  // why it did not start
	counter atomic.Int64
}

// Main runs the tests and then stops the server if one was started; it returns m.Run's code.
func Main(m *testing.M) int {
	code := m.Run()
	if server.s != nil {
		if err := server.s.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testpg: %v\n", err)
		}
	}
	return code
}

// DSN returns the URL of a fresh, empty database on the test binary's server, dropped when the
// test ends.
func DSN(t testing.TB) string {
	t.Helper()
	start(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), server.counter.Add(1))
	dsn, err := server.s.Database(name)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		if err := server.s.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("testpg: drop database %s: %v", name, err)
		}
	})
	return dsn
}

// Restart restarts the server (pg_ctl restart: every connection is dropped) and returns once
// it accepts connections again.
func Restart(t testing.TB) {
	t.Helper()
	run(t, "restart")
}

// Halt stops the server until Resume: connections fail meanwhile.
func Halt(t testing.TB) {
	t.Helper()
	run(t, "halt")
}

// Resume starts a halted server again, on the same port, with its data.
func Resume(t testing.TB) {
	t.Helper()
	run(t, "start")
}

func run(t testing.TB, cmd string) {
	start(t)
	if out, err := exec.Command(server.s.script, cmd, server.s.Dir).CombinedOutput(); err != nil {
		t.Fatalf("testpg: %s: %v: %s", cmd, err, out)
	}
}

// start starts the server once per test binary, or skips or fails t.
func start(t testing.TB) {
	t.Helper()
	server.once.Do(func() {
		if server.skip = Unavailable(); server.skip == "" {
			server.s, server.err = New()
		}
	})
	if server.skip != "" {
		t.Skip("PostgreSQL unavailable: " + server.skip)
	}
	if server.err != nil {
		t.Fatalf("testpg: %v", server.err)
	}
}

// Unavailable says why PostgreSQL cannot run here, or "": it needs Debian's server binaries,
// and root or the postgres user (initdb and pg_ctl run as postgres).
func Unavailable() string {
	if u, err := user.Current(); err != nil || (u.Uid != "0" && u.Username != "postgres") {
		return "neither root nor the postgres user (initdb and pg_ctl run as postgres)"
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(m) == 0 && os.Getenv("PG_BIN") == "" {
		return "no server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql; scripts/install-deps.sh test)"
	}
	return ""
}

// Server is a throwaway PostgreSQL server: trust authentication on loopback, fsync off.
type Server struct {
	Dir     string   // the cluster's directory (scripts/pg.sh DIR), removed by Stop
	DSN     *url.URL // the "postgres" database
	Version string   // server_version
	script  string
	admin   *sql.DB
}

// New starts a server with scripts/pg.sh (found above the working directory) in a new
// directory: not under a test's or the benchmark's scratch directory, which the postgres user
// cannot reach.
func New() (*Server, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	s := &Server{script: filepath.Join(root, "scripts", "pg.sh")}
	if s.Dir, err = os.MkdirTemp("", "ivrd-pg-"); err != nil {
		return nil, err
	}
	out, err := exec.Command(s.script, "start", s.Dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		s.Stop()
		return nil, fmt.Errorf("scripts/pg.sh start: %w", err)
	}
	if s.DSN, err = url.Parse(strings.TrimSpace(string(out))); err != nil {
		s.Stop()
		return nil, fmt.Errorf("scripts/pg.sh start printed %q: %w", out, err)
	}
	if s.admin, err = sql.Open("pgx", s.DSN.String()); err != nil {
		s.Stop()
		return nil, err
	}
	s.admin.SetMaxOpenConns(2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin.QueryRowContext(ctx, "SHOW server_version").Scan(&s.Version); err != nil {
		s.Stop()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// Database creates an empty database and returns its URL.
func (s *Server) Database(name string) (string, error) {
	if err := s.exec("CREATE DATABASE " + name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u := *s.DSN
	u.Path = "/" + name
	return u.String(), nil
}

// exec runs a statement on the "postgres" database, twice if need be: the first may meet a
// connection that a restart of the server broke.
func (s *Server) exec(q string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.admin.ExecContext(ctx, q)
	if err != nil {
		_, err = s.admin.ExecContext(ctx, q)
	}
	return err
}

// PID is the postmaster's process: the first line of its postmaster.pid. Every other server
// process (a backend per connection, the background workers) is its child.
func (s *Server) PID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() error {
	if s.admin != nil {
		s.admin.Close()
	}
	if out, err := exec.Command(s.script, "stop", s.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("stop %s: %v: %s", s.Dir, err, out)
	}
	return nil
}

// moduleRoot is the directory of go.mod above the working directory (a test runs in its
// package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testpg: go.mod not found above the working directory")
		}
		dir = parent
	}
}
