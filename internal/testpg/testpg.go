// Package testpg gives tests a real, throwaway PostgreSQL server (Debian's postgresql package,
// run by scripts/pg.sh): one server per test binary, started on first use on a free loopback
// port, and a fresh empty database per test. A test binary that uses it wraps its tests in
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
	dir     string // the cluster's directory (scripts/pg.sh DIR)
	script  string
	dsn     *url.URL // the "postgres" database
	skip    string   // why PostgreSQL cannot run here
	err     error    // why it did not start
	admin   *sql.DB
	counter atomic.Int64
}

// Main runs the tests and then stops the server if one was started; it returns m.Run's code.
func Main(m *testing.M) int {
	code := m.Run()
	if server.dir != "" {
		if server.admin != nil {
			server.admin.Close()
		}
		if out, err := exec.Command(server.script, "stop", server.dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "testpg: stop %s: %v: %s\n", server.dir, err, out)
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
	if err := admin("CREATE DATABASE " + name); err != nil {
		t.Fatalf("testpg: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("testpg: drop database %s: %v", name, err)
		}
	})
	u := *server.dsn
	u.Path = "/" + name
	return u.String()
}

// admin runs a statement on the server's "postgres" database, twice if need be: the first may
// meet a connection that a test's restart of the server broke.
func admin(q string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := server.admin.ExecContext(ctx, q)
	if err != nil {
		_, err = server.admin.ExecContext(ctx, q)
	}
	return err
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
	if out, err := exec.Command(server.script, cmd, server.dir).CombinedOutput(); err != nil {
		t.Fatalf("testpg: %s: %v: %s", cmd, err, out)
	}
}

// start starts the server once per test binary, or skips or fails t.
func start(t testing.TB) {
	t.Helper()
	server.once.Do(func() { server.skip, server.err = startServer() })
	if server.skip != "" {
		t.Skip("PostgreSQL unavailable: " + server.skip)
	}
	if server.err != nil {
		t.Fatalf("testpg: %v", server.err)
	}
}

// startServer runs scripts/pg.sh start in a new directory. It returns why PostgreSQL cannot run
// here (skip), or why it did not start (err).
func startServer() (skip string, err error) {
	if u, err := user.Current(); err != nil || (u.Uid != "0" && u.Username != "postgres") {
		return "the tests run neither as root nor as the postgres user (initdb and pg_ctl run as postgres)", nil
	}
	if !haveServer() {
		return "no server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql; scripts/install-deps.sh test)", nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	server.script = filepath.Join(root, "scripts", "pg.sh")
	// Not under the test's temporary directory: the postgres user must reach it.
	if server.dir, err = os.MkdirTemp("", "ivrd-pg-"); err != nil {
		return "", err
	}
	out, err := exec.Command(server.script, "start", server.dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("scripts/pg.sh start: %w", err)
	}
	if server.dsn, err = url.Parse(strings.TrimSpace(string(out))); err != nil {
		return "", fmt.Errorf("scripts/pg.sh start printed %q: %w", out, err)
	}
	if server.admin, err = sql.Open("pgx", server.dsn.String()); err != nil {
		return "", err
	}
	server.admin.SetMaxOpenConns(2)
	return "", nil
}

func haveServer() bool {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	return len(m) > 0 || os.Getenv("PG_BIN") != ""
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
