// Package tests3 runs a real S3 server for tests: Versity's S3 gateway (versitygw), built and
// run by the project's scripts/s3.sh, on a free loopback port over a temporary directory with
// one bucket. It enforces signatures and presigned URL expiry as any S3 store does.
package tests3

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running versitygw serving one bucket.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Bucket   string
	Access   string
	Secret   string
	Dir      string // the served directory: Dir/Bucket holds the bucket's objects as files

	pid  int
	stop func()
}

// The test credentials (the server runs on loopback for one test only).
const (
	access = "ivrd-test"
	secret = "ivrd-test-secret"
	bucket = "recordings"
)

// Environment of a child process that uses the parent's server (see Env and FromEnv).
const (
	envEndpoint = "IVRD_TESTS3_ENDPOINT"
	envBucket   = "IVRD_TESTS3_BUCKET"
	envDir      = "IVRD_TESTS3_DIR"
)

var install struct {
	once sync.Once
	err  error
}

// Install builds versitygw with scripts/s3.sh once per machine (about a minute the first
// time). Start calls it.
func Install() error {
	install.once.Do(func() {
		script, err := Script()
		if err != nil {
			install.err = err
			return
		}
		var out bytes.Buffer
		cmd := exec.Command(script, "install")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			install.err = fmt.Errorf("%s install: %v\n%s", script, err, out.String())
		}
	})
	return install.err
}

// Script is the path of scripts/s3.sh, found above the working directory.
func Script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "s3.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("tests3: scripts/s3.sh not found above the working directory")
		}
		dir = up
	}
}

// Start runs a versitygw for the test and stops it when the test ends. The test is skipped,
// saying why, when versitygw cannot be built (no network to the Go module proxy).
func Start(t testing.TB) *Server {
	t.Helper()
	if err := Install(); err != nil {
		t.Skipf("S3 server (versitygw) cannot be built, skipping: %v", err)
	}
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatalf("tests3: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

// New runs a versitygw serving dir (which must exist) with one bucket, until Stop: for a
// program that is not a test (the benchmark). It builds versitygw first if need be.
func New(dir string) (*Server, error) {
	if err := Install(); err != nil {
		return nil, err
	}
	script, _ := Script()
	s := &Server{Bucket: bucket, Access: access, Secret: secret, Dir: dir}
	if err := os.Mkdir(filepath.Join(s.Dir, bucket), 0o755); err != nil { // a sub-directory is a bucket
		return nil, err
	}
	var lastErr error
	for range 3 { // a free port can be taken between the check and the server's bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if lastErr = s.run(script, port); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

// run starts the server on port and waits until it accepts connections.
func (s *Server) run(script string, port int) error {
	log := &syncWriter{}
	cmd := exec.Command(script, "serve", s.Dir, strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "S3_ACCESS_KEY="+s.Access, "S3_SECRET_KEY="+s.Secret)
	cmd.Stdout, cmd.Stderr = log, log
	// The script execs versitygw, which dies with the process that started it however that ends.
	// The kernel sends that signal when the thread that started it ends, so that thread is
	// kept until versitygw exits: a goroutine locked to a thread (the benchmark's RTP
	// capture) ends its thread when it returns, and could have been given this one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("versitygw exited: %s", log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("versitygw did not listen on %s within 15 s: %s", addr, log.String())
		}
	}
	s.Endpoint = "http://" + addr
	s.pid = cmd.Process.Pid
	s.stop = sync.OnceFunc(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return nil
}

// PID is the server's process (versitygw: the script execs it).
func (s *Server) PID() int { return s.pid }

// Stop stops the server: before the test ends (an outage of the store), or New's.
func (s *Server) Stop() { s.stop() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// BlobURL is ivrd's --blob value for the server's bucket.
func (s *Server) BlobURL() string {
	return "s3://" + s.Bucket + "?endpoint=" + s.Endpoint + "&region=us-east-1"
}

// CredentialsEnv is the environment that gives ivrd the server's credentials.
func (s *Server) CredentialsEnv() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.Access, "AWS_SECRET_ACCESS_KEY=" + s.Secret}
}

// Env passes the server to a child process of the test (FromEnv there).
func (s *Server) Env() []string {
	return []string{envEndpoint + "=" + s.Endpoint, envBucket + "=" + s.Bucket, envDir + "=" + s.Dir}
}

// FromEnv is the server a parent process passed with Env, or nil.
func FromEnv() *Server {
	e := os.Getenv(envEndpoint)
	if e == "" {
		return nil
	}
	return &Server{Endpoint: e, Bucket: os.Getenv(envBucket), Dir: os.Getenv(envDir), Access: access, Secret: secret}
}

// Object is an object as the server stores it.
type Object struct {
	Name    string
	Size    int64
	ModTime time.Time // when the server wrote it
}

// Objects lists the bucket's objects whose names start with prefix, sorted by name, read
// from the served directory (what the server stored, without asking it).
func (s *Server) Objects(prefix string) ([]Object, error) {
	root := filepath.Join(s.Dir, s.Bucket)
	var out []Object
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, Object{Name: name, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	return out, err
}

// syncWriter collects the server's stdout and stderr.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
