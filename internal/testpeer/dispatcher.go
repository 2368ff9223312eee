package testpeer

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Dispatcher is Kamailio running the project's configuration for a cluster
// (deploy/kamailio/kamailio.cfg): it spreads INVITEs round-robin over Nodes (SIP host:port
// each), probing them with OPTIONS every ProbeInterval seconds (default 1).
type Dispatcher struct {
	Nodes         []string
	ProbeInterval int
}

// DispatcherConfig is the path of deploy/kamailio/kamailio.cfg in this source tree.
func DispatcherConfig() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("testpeer: where is the source tree?")
	}
	cfg := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "kamailio", "kamailio.cfg")
	if _, err := os.Stat(cfg); err != nil {
		return "", err
	}
	return cfg, nil
}

// Start runs the dispatcher on a free loopback port (UDP and TCP) and stops it when the test
// ends; it skips the test when Kamailio is not installed.
func (d Dispatcher) Start(t testing.TB) *KamailioServer {
	t.Helper()
	if !KamailioAvailable() {
		t.Skip("kamailio is not installed (Debian package kamailio; scripts/install-deps.sh)")
	}
	cfg, err := DispatcherConfig()
	if err != nil {
		t.Fatal(err)
	}
	modules, err := KamailioModules()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var list strings.Builder
	for _, n := range d.Nodes {
		if strings.ContainsAny(n, " \t\n\"") {
			t.Fatalf("testpeer: dispatcher: bad node address %q", n)
		}
		list.WriteString("1 sip:" + n + "\n")
	}
	listFile := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := d.ProbeInterval
	if probe <= 0 {
		probe = 1
	}
	return startOnFreePort(t, func(port int) (*KamailioServer, error) {
		p := strconv.Itoa(port)
		return launchKamailio(dir, cfg, port, 0, defaultKamailioMem, "LISTEN=udp:127.0.0.1:"+p, "LISTEN_TCP=tcp:127.0.0.1:"+p,
			`DISPATCHER_LIST="`+listFile+`"`, "PROBE_INTERVAL="+strconv.Itoa(probe), "MODULES="+strconv.Quote(modules))
	})
}
