// Package e2e runs ivrd end to end: the real binary, an application that drives it over HTTP as a
// user's app would, and a real SIP caller (sipp) sending known audio.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio/audiotest"
	"github.com/ivrd/ivrd/internal/client"
	"github.com/ivrd/ivrd/internal/notify"
	"github.com/ivrd/ivrd/internal/testpg"
)

var ivrdBin string

func TestMain(m *testing.M) {
	if spec := os.Getenv(floodEnv); spec != "" { // a helper process of a test, not the tests
		os.Exit(floodMain(spec))
	}
	dir, err := os.MkdirTemp("", "ivrd-e2e")
	if err != nil {
		panic(err)
	}
	ivrdBin = filepath.Join(dir, "ivrd")
	build := exec.Command("go", "build", "-o", ivrdBin, "../../cmd/ivrd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ivrd:", err)
		os.Exit(1)
	}
	code := testpg.Main(m) // m.Run, then the tests' PostgreSQL is stopped
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a free loopback port for network ("tcp" or "udp").
func freePort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freeSIPPort returns a 127.0.0.1 address whose port was free for both UDP and TCP a moment
// ago (ivrd's --sip takes both; baresip also takes the port above for TLS), picked below the
// kernel's ephemeral range (32768 and up) so that the outgoing connections of this busy
// machine do not take it before the server binds it.
func freeSIPPort(t *testing.T) string {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		if portFree("udp", port) && portFree("tcp", port) && portFree("tcp", port+1) {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return ""
}

// portFree reports whether port on 127.0.0.1 could be bound for network just now.
func portFree(network string, port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if network == "udp" {
		c, err := net.ListenPacket(network, addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	l, err := net.Listen(network, addr)
	if err == nil {
		l.Close()
	}
	return err == nil
}

// ivrd is one running ivrd process.
type ivrd struct {
	t         *testing.T
	data      string
	http, sip string
	cmd       *exec.Cmd
	exited    chan struct{}
	logPath   string
}

// ivrdCmd runs an ivrd admin command and returns its stdout.
func ivrdCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(ivrdBin, args...).Output()
	if err != nil {
		t.Fatalf("ivrd %v: %v", args, err)
	}
	return string(out)
}

// startIvrd starts `ivrd serve` on data with fresh ports (or the given ones) and waits until it
// answers HTTP.
func startIvrd(t *testing.T, data, httpAddr, sipAddr string, extra ...string) *ivrd {
	t.Helper()
	return startIvrdUnder(t, nil, data, httpAddr, sipAddr, extra...)
}

// startIvrdUnder is startIvrd with ivrd run by a wrapper that execs it, e.g.
// {"prlimit", "--nofile=20000:20000", "--"}.
func startIvrdUnder(t *testing.T, wrapper []string, data, httpAddr, sipAddr string, extra ...string) *ivrd {
	t.Helper()
	if httpAddr == "" {
		httpAddr = freePort(t, "tcp")
	}
	if sipAddr == "" {
		sipAddr = freeSIPPort(t)
	}
	args := append([]string{"serve", "--data", data, "--http", httpAddr, "--sip", sipAddr}, extra...)
	argv := append(append(append([]string(nil), wrapper...), ivrdBin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	logf, err := os.OpenFile(logPath(data), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ivrd{t: t, data: data, http: httpAddr, sip: sipAddr, cmd: cmd, exited: make(chan struct{}), logPath: logf.Name()}
	go func() { cmd.Wait(); logf.Close(); close(p.exited) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.signal(syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("ivrd log:\n%s", tail(string(b), 60))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			res.Body.Close()
			return p
		}
		select {
		case <-p.exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("ivrd exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("ivrd did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logPath is where ivrd with data directory data logs.
func logPath(data string) string { return filepath.Join(data, "..", filepath.Base(data)+".log") }

// logText returns what ivrd has logged so far.
func (p *ivrd) logText() string {
	b, _ := os.ReadFile(logPath(p.data))
	return string(b)
}

func (p *ivrd) signal(s syscall.Signal) {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(s)
	}
}

// kill SIGKILLs ivrd and waits for it to be gone.
func (p *ivrd) kill() {
	p.signal(syscall.SIGKILL)
	<-p.exited
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// note is one notification the app received.
type note struct {
	at         time.Time
	path       string
	params     url.Values
	deliveryID string
}

// app is the user's web application: it receives notifications (verifying their signatures and
// dropping repeated deliveries) and answers them by calling ivrd's API over HTTP, with the same
// client package a Go application would use.
type app struct {
	t      *testing.T
	srv    *httptest.Server
	ivrd   string // ivrd base URL
	id     string
	token  string
	notes  chan note
	badSig chan string
	// inspect, when set, sees every request the app gets (its body restored) before the
	// receiver does.
	inspect *atomic.Pointer[func(r *http.Request, body []byte)]
}

func newApp(t *testing.T, appID, token string) *app {
	a := &app{t: t, id: appID, token: token, notes: make(chan note, 64), badSig: make(chan string, 8),
		inspect: new(atomic.Pointer[func(*http.Request, []byte)])}
	rc := &client.Receiver{Token: func() string { return a.token },
		Handle: func(n client.Notification) {
			a.notes <- note{at: n.At, path: n.Path, params: n.Params, deliveryID: n.DeliveryID}
		},
		BadSignature: func(r *http.Request, body []byte) {
			a.badSig <- fmt.Sprintf("%s %s sig=%q body=%s", r.Method, r.URL, r.Header.Get(notify.HeaderSignature), body)
		}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := a.inspect.Load(); f != nil {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			(*f)(r, body)
		}
		rc.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// api is the app's API client.
func (a *app) api() *client.Client {
	return &client.Client{BaseURL: a.ivrd, AppID: a.id, Token: a.token}
}

// url is a notify URL on the app.
func (a *app) url(path string) string { return a.srv.URL + path }

// next waits for the next notification.
func (a *app) next(timeout time.Duration) note {
	a.t.Helper()
	select {
	case n := <-a.notes:
		return n
	case s := <-a.badSig:
		a.t.Fatalf("notification with a bad signature: %s", s)
	case <-time.After(timeout):
		a.t.Fatal("no notification in time")
	}
	return note{}
}

// call invokes an API block and returns the status.
func (a *app) call(path string, params url.Values) string {
	a.t.Helper()
	st, err := a.api().Block(context.Background(), path, params)
	if err != nil {
		a.t.Fatalf("%s: %v", path, err)
	}
	return st
}

// newAppOn creates an app and a number in data (before ivrd starts) and returns the app.
func newAppOn(t *testing.T, data, number string) *app {
	t.Helper()
	var creds struct {
		AppID       string `json:"app_id"`
		AccessToken string `json:"access_token"`
	}
	out := ivrdCmd(t, "app", "create", "--data", data, "--name", "e2e")
	if err := json.Unmarshal([]byte(out), &creds); err != nil || creds.AppID == "" || creds.AccessToken == "" {
		t.Fatalf("app create output %q: %v", out, err)
	}
	a := newApp(t, creds.AppID, creds.AccessToken)
	ivrdCmd(t, "number", "add", "--data", data, "--app", a.id, "--number", number, "--notify-url", a.url("/answer?shop=42"))
	return a
}

// download GETs a URL and returns status and body.
func download(t *testing.T, u string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// decodeMP3 decodes with ffmpeg (a real decoder) to 8 kHz mono s16 and fails on decode errors.
func decodeMP3(t *testing.T, mp3 []byte) []int16 {
	t.Helper()
	return audiotest.Run(t, mp3, "ffmpeg", audiotest.FFmpegArgs("pipe:0")...)
}
