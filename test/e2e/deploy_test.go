package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies runs systemd's own checker on deploy/systemd/ivrd.service (pointed at
// the binary under test): any complaint fails, including the ones it merely "ignores".
func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	unit, err := os.ReadFile("../../deploy/systemd/ivrd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AmbientCapabilities=CAP_SYS_NICE", "StateDirectory=ivrd", "ExecStart=/usr/local/bin/ivrd serve", "IVRD_DATA=/var/lib/ivrd"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	path := filepath.Join(t.TempDir(), "ivrd.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/ivrd", ivrdBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "ivrd.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
