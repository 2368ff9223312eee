package testpeer

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Kamailio is the SIP provider of the trunk tests: Kamailio (Debian package kamailio) as a
// registrar and proxy with digest authentication for one account, the way a commercial SIP
// trunk behaves (config: kamailio/provider.cfg).
//   - REGISTER for the account is challenged (401) and kept in memory for at most MaxExpires.
//   - An INVITE whose Request-URI user is one of DIDs goes to the account's registered contact
//     (480 while none is registered); the Request-URI is then that contact, the To the DID.
//   - Any other INVITE is challenged (407) and must carry the account's credentials; it is then
//     routed by its Request-URI user through Routes (404 for numbers not there), record-routed.
//
// Every request and decision is an Event (see Events and WaitEvent).
type Kamailio struct {
	User, Password string
	Realm          string            // digest realm; default "ivrd.test"
	Algorithm      string            // digest algorithm of the challenges: "MD5" (default) or "SHA-256"
	MaxExpires     time.Duration     // registrations are granted at most this long (whole seconds); default 1 h
	Routes         map[string]string // number -> "host:port" of the phone (e.g. an Answerer) behind it
	DIDs           []string          // numbers delivered to the registered account
	// TLS, when set, adds a SIP over TLS listener (KamailioServer.AddrTLS) with this server
	// certificate (NewTLSFiles; Kamailio's tls module, Debian kamailio-tls-modules). The
	// phones behind it are still reached over UDP.
	TLS *TLSFiles
}

//go:embed kamailio/provider.cfg
var providerCfg string

var providerTmpl = template.Must(template.New("provider.cfg").Parse(providerCfg))

// KamailioEvent is one IVRDTEST line of Kamailio's log: what it received or decided.
type KamailioEvent struct {
	At     time.Time         // when the line reached us
	Kind   string            // request, challenge, authorized, forbidden, registered, route, noroute, deliver, unregistered
	Fields map[string]string // e.g. method, ruri, from, to, code, user, contact, number
}

// KamailioServer is a running Kamailio.
type KamailioServer struct {
	Addr    string // "127.0.0.1:port", UDP and TCP
	AddrTLS string // "127.0.0.1:port" of SIP over TLS ("" without Kamailio.TLS)

	log    *os.File
	pid    int
	stop   func()
	mu     sync.Mutex
	events []KamailioEvent
	added  chan struct{} // closed and replaced whenever an event is added
}

// KamailioAvailable reports whether the kamailio binary is installed.
func KamailioAvailable() bool {
	_, err := exec.LookPath("kamailio")
	return err == nil
}

// KamailioModules finds the directory of Kamailio's modules (its mpath).
func KamailioModules() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/*/kamailio/modules/tm.so")
	if m2, _ := filepath.Glob("/usr/lib/kamailio/modules/tm.so"); len(m2) > 0 {
		matches = append(matches, m2...)
	}
	if len(matches) == 0 {
		return "", errors.New("testpeer: kamailio modules not found (Debian package kamailio)")
	}
	return filepath.Dir(matches[0]), nil
}

type kamailioRoute struct{ Number, Addr string }

// config renders the provider's configuration for host:port (and tlsPort, when it has TLS).
func (k Kamailio) config(host string, port, tlsPort int, modules string) (string, error) {
	var tlsFiles []string
	if k.TLS != nil {
		tlsFiles = []string{k.TLS.Cert, k.TLS.Key}
	}
	for _, s := range append(append([]string{k.User, k.Password, k.Realm}, k.DIDs...), tlsFiles...) {
		if strings.ContainsAny(s, "\"\\\n$") {
			return "", fmt.Errorf("testpeer: kamailio: %q has characters the config cannot hold", s)
		}
	}
	if k.User == "" || k.Password == "" {
		return "", errors.New("testpeer: kamailio: the account needs a user and a password")
	}
	alg := strings.ToUpper(k.Algorithm)
	switch alg {
	case "":
		alg = "MD5"
	case "MD5", "SHA-256":
	default:
		return "", fmt.Errorf("testpeer: kamailio: algorithm %q (MD5 or SHA-256)", k.Algorithm)
	}
	realm := k.Realm
	if realm == "" {
		realm = "ivrd.test"
	}
	expires := int(k.MaxExpires / time.Second)
	if expires <= 0 {
		expires = 3600
	}
	routes := make([]kamailioRoute, 0, len(k.Routes))
	for n, a := range k.Routes {
		if !safeUser(n) || strings.ContainsAny(a, "\"\\\n$") {
			return "", fmt.Errorf("testpeer: kamailio: bad route %q -> %q", n, a)
		}
		routes = append(routes, kamailioRoute{n, a})
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].Number < routes[j].Number })
	var b strings.Builder
	vars := map[string]any{
		"Host": host, "Port": port, "ModulePath": modules,
		"User": k.User, "Password": k.Password, "Realm": realm, "Algorithm": alg,
		"MaxExpires": expires, "Routes": routes, "DIDs": k.DIDs,
	}
	if k.TLS != nil {
		vars["TLSPort"], vars["TLSCert"], vars["TLSKey"] = tlsPort, k.TLS.Cert, k.TLS.Key
	}
	err := providerTmpl.Execute(&b, vars)
	return b.String(), err
}

// Start runs Kamailio on a free loopback port (UDP and TCP) with a temporary run directory,
// and stops it when the test ends; it skips the test when Kamailio is not installed. On
// failure its log is shown.
func (k Kamailio) Start(t testing.TB) *KamailioServer {
	t.Helper()
	if !KamailioAvailable() {
		t.Skip("kamailio is not installed (Debian package kamailio; scripts/install-deps.sh)")
	}
	modules, err := KamailioModules()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, "tls.so")); k.TLS != nil && err != nil {
		t.Skip("kamailio's tls module is not installed (Debian package kamailio-tls-modules; scripts/install-deps.sh)")
	}
	dir := t.TempDir()
	return startOnFreePort(t, func(port int) (*KamailioServer, error) {
		tlsPort := 0
		if k.TLS != nil {
			var err error
			if tlsPort, err = freeUDPTCPPort(); err != nil {
				return nil, err
			}
		}
		return k.start(dir, port, tlsPort, modules)
	})
}

// startOnFreePort runs start on a free port, again on another if that one was taken meanwhile,
// and stops the Kamailio it started when the test ends (showing its log if the test failed).
func startOnFreePort(t testing.TB, start func(port int) (*KamailioServer, error)) *KamailioServer {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port, err := freeUDPTCPPort()
		if err != nil {
			t.Fatal(err)
		}
		ks, err := start(port)
		if err == nil {
			t.Cleanup(func() {
				ks.stop()
				if t.Failed() {
					t.Logf("kamailio log:\n%s", tail(ks.Log()))
				}
			})
			return ks
		}
		if attempt == bindAttempts {
			t.Fatal(err)
		}
	}
}

// start runs Kamailio once on port (and tlsPort) and waits until it listens.
func (k Kamailio) start(dir string, port, tlsPort int, modules string) (*KamailioServer, error) {
	cfg, err := k.config("127.0.0.1", port, tlsPort, modules)
	if err != nil {
		return nil, err
	}
	return StartKamailioConfig(KamailioRun{Dir: dir, Config: cfg, Port: port, TLSPort: tlsPort})
}

// KamailioRun is one Kamailio process with a configuration of its caller's.
type KamailioRun struct {
	Dir     string // its config, log, pid file and run directory go here
	Config  string // the configuration text; it must listen on 127.0.0.1:Port (UDP)
	Port    int
	TLSPort int // also wait for a TLS listener on this port (0: none)
	SHMMiB  int // shared memory (-m); default 64
	PKGMiB  int // private memory per process (-M); default 8
}

// StartKamailioConfig runs Kamailio in the foreground with r's configuration and waits until
// it listens on r.Port; Stop ends it and its children. Its output goes to a log file in r.Dir
// (KamailioServer.LogPath).
func StartKamailioConfig(r KamailioRun) (*KamailioServer, error) {
	shm, pkg := r.SHMMiB, r.PKGMiB
	if shm <= 0 {
		shm = defaultKamailioMem.shm
	}
	if pkg <= 0 {
		pkg = defaultKamailioMem.pkg
	}
	dir, port, tlsPort := r.Dir, r.Port, r.TLSPort
	name := filepath.Join(dir, "kamailio-"+strconv.Itoa(port)+".cfg")
	if err := os.WriteFile(name, []byte(r.Config), 0o600); err != nil {
		return nil, err
	}
	return launchKamailio(dir, name, port, tlsPort, kamailioMem{shm, pkg})
}

// kamailioMem is a Kamailio process's memory: shared and private per process, in MiB.
type kamailioMem struct{ shm, pkg int }

// defaultKamailioMem is what a test's Kamailio gets unless told.
var defaultKamailioMem = kamailioMem{64, 8}

// launchKamailio runs Kamailio with the config file cfg (and its defines, -A NAME=value) in
// run directory dir and waits until it listens on port (and tlsPort).
func launchKamailio(dir, cfg string, port, tlsPort int, mem kamailioMem, defines ...string) (*KamailioServer, error) {
	logf, err := os.Create(filepath.Join(dir, "kamailio-"+strconv.Itoa(port)+".log"))
	if err != nil {
		return nil, err
	}
	ks := &KamailioServer{Addr: "127.0.0.1:" + strconv.Itoa(port), log: logf, added: make(chan struct{})}
	if tlsPort != 0 {
		ks.AddrTLS = "127.0.0.1:" + strconv.Itoa(tlsPort)
	}
	args := []string{"-DD", "-E", "-f", cfg, "-P", filepath.Join(dir, "kamailio-"+strconv.Itoa(port)+".pid"),
		"-Y", dir, "-m", strconv.Itoa(mem.shm), "-M", strconv.Itoa(mem.pkg)}
	for _, d := range defines {
		args = append(args, "-A", d)
	}
	cmd := exec.Command("kamailio", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its children go with it
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("testpeer: kamailio: %w", err)
	}
	ks.pid = cmd.Process.Pid
	read := make(chan struct{})
	go func() { ks.read(pr); close(read) }()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); pw.Close(); close(exited) }()
	ks.stop = sync.OnceFunc(func() {
		// The main process stops its children; the group is killed only as a last resort.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // any child left behind
		<-read
		logf.Close()
	})
	err = WaitListening(port, exited, 10*time.Second)
	if err == nil && tlsPort != 0 {
		err = waitTCPListening(ks.AddrTLS, exited, 10*time.Second)
	}
	if err != nil {
		ks.stop()
		b, _ := os.ReadFile(logf.Name())
		return nil, fmt.Errorf("testpeer: kamailio on port %d: %w\n%s", port, err, tail(string(b)))
	}
	return ks, nil
}

// Log returns what Kamailio has logged so far.
func (ks *KamailioServer) Log() string {
	b, _ := os.ReadFile(ks.log.Name())
	return string(b)
}

// Stop stops Kamailio (as the test's end does); registrations and calls through it are lost.
func (ks *KamailioServer) Stop() { ks.stop() }

// PID is the main Kamailio process's; its children are in the process group of that id.
func (ks *KamailioServer) PID() int { return ks.pid }

// LogPath is the file Kamailio's output goes to.
func (ks *KamailioServer) LogPath() string { return ks.log.Name() }

// read copies Kamailio's output to its log file and collects the IVRDTEST events.
func (ks *KamailioServer) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = ks.log.Write(append(line, '\n'))
		if _, rest, ok := bytes.Cut(line, []byte("IVRDTEST ")); ok {
			ks.add(parseKamailioEvent(string(rest), time.Now()))
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// parseKamailioEvent parses "kind k=v k=v ..." (values run to the next space).
func parseKamailioEvent(s string, at time.Time) KamailioEvent {
	f := strings.Fields(s)
	ev := KamailioEvent{At: at, Fields: map[string]string{}}
	if len(f) == 0 {
		return ev
	}
	ev.Kind = f[0]
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		ev.Fields[k] = v
	}
	return ev
}

func (ks *KamailioServer) add(ev KamailioEvent) {
	ks.mu.Lock()
	ks.events = append(ks.events, ev)
	close(ks.added)
	ks.added = make(chan struct{})
	ks.mu.Unlock()
}

// Events returns the events so far of the given kind (all when kind is ""), in order.
func (ks *KamailioServer) Events(kind string) []KamailioEvent {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var out []KamailioEvent
	for _, ev := range ks.events {
		if kind == "" || ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// WaitEvents waits until there are at least n events of kind and returns them; after timeout
// it returns those there are.
func (ks *KamailioServer) WaitEvents(kind string, n int, timeout time.Duration) []KamailioEvent {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ks.mu.Lock()
		added := ks.added
		ks.mu.Unlock()
		if evs := ks.Events(kind); len(evs) >= n {
			return evs
		}
		select {
		case <-added:
		case <-deadline.C:
			return ks.Events(kind)
		}
	}
}

// freeUDPTCPPort returns a port free on 127.0.0.1 for both UDP and TCP a moment ago.
func freeUDPTCPPort() (int, error) {
	for i := 0; i < 50; i++ {
		p, err := freeUDPPort()
		if err != nil {
			return 0, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("testpeer: no port free for both UDP and TCP")
}
