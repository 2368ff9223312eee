package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// jsonLines decodes the one-object-per-line output of a list command.
func jsonLines(t *testing.T, out string) []map[string]string {
	t.Helper()
	var rows []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		rows = append(rows, m)
	}
	return rows
}

// TestAdminCommands drives the admin CLI against a running ivrd: a lost token is found with
// `app list`, a rotated token replaces the old one on the live server, and a removed number is
// no longer routed.
func TestAdminCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "")
	a.ivrd = "http://" + p.http

	var found map[string]string
	for _, row := range jsonLines(t, ivrdCmd(t, "app", "list", "--data", data)) {
		if row["app_id"] == a.id {
			found = row
		}
	}
	if found == nil || found["access_token"] != a.token || found["name"] != "e2e" {
		t.Fatalf("app list does not show the app and its token: %v", found)
	}
	nums := jsonLines(t, ivrdCmd(t, "number", "list", "--data", data))
	if len(nums) == 0 || nums[len(nums)-1]["number"] != number || nums[len(nums)-1]["app_id"] != a.id {
		t.Fatalf("number list: %v", nums)
	}

	// An unknown session with good credentials answers error_invalid_session; with a bad
	// token error_invalid_access_token: that tells which token the server accepts.
	probe := url.Values{"session": {"Snone"}, "notify_url": {a.url("/x")}}
	if st := a.call("middle/monitor", probe); st != "error_invalid_session" {
		t.Fatal("before rotation:", st)
	}
	var rotated map[string]string
	if err := json.Unmarshal([]byte(ivrdCmd(t, "app", "rotate-token", "--data", data, "--app", a.id)), &rotated); err != nil || rotated["access_token"] == a.token {
		t.Fatalf("rotate-token: %v %v", rotated, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st := a.call("middle/monitor", probe); st == "error_invalid_access_token" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old token still works 15 s after rotation")
		}
		time.Sleep(250 * time.Millisecond)
	}
	a.token = rotated["access_token"]
	if st := a.call("middle/monitor", probe); st != "error_invalid_session" {
		t.Fatal("the new token is refused:", st)
	}

	ivrdCmd(t, "number", "remove", "--data", data, "--number", number)
	if out, err := exec.Command(ivrdBin, "number", "remove", "--data", data, "--number", number).CombinedOutput(); err == nil {
		t.Fatalf("removing it again succeeded: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := <-peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), Timeout: 10 * time.Second})
	if res.Status != 404 {
		t.Fatalf("call to a removed number: status %d, want 404", res.Status)
	}
}

// TestAdminCommandErrors: missing flags and bad values are refused with the reason.
func TestAdminCommandErrors(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"app", "create"}, "--name is required"},
		{[]string{"app", "rotate-token", "--app", "APnope"}, "not found"},
		{[]string{"number", "add", "--app", "APnope", "--number", "+65", "--notify-url", "http://x"}, "not found"},
		{[]string{"number", "remove", "--number", "alice"}, "not an E.164 number"},
		{[]string{"app", "frobnicate"}, "unknown command"},
	} {
		out, err := exec.Command(ivrdBin, append(tc.args, "--data", data)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("ivrd %v: err %v, output %q; want it to mention %q", tc.args, err, out, tc.want)
		}
	}
	// A serve refused for its settings creates nothing.
	fresh := filepath.Join(t.TempDir(), "fresh")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-level", "loud"}, "log-level"},
		{[]string{"--sip-trunk", "foo"}, "sip-trunk"},
	} {
		cmd := exec.Command(ivrdBin, append([]string{"serve", "--data", fresh}, tc.args...)...)
		cmd.Env = append(os.Environ(), "IVRD_URL_TTL=forever")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "IVRD_URL_TTL") {
			t.Errorf("ivrd serve %v: err %v, output %q; want it to name %q and IVRD_URL_TTL", tc.args, err, out, tc.want)
		}
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a refused serve created its data directory: %v", err)
	}
}
