package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// parse runs the serve flags as cmd/ivrd does: defaults, environment, flags, Validate.
func parse(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	c := Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestBadSettingsAreRefusedWithNameAndReason(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string // in the error
	}{
		{"env duration", map[string]string{"IVRD_URL_TTL": "forever"}, nil, `IVRD_URL_TTL="forever": not a duration`},
		{"env negative duration", map[string]string{"IVRD_IDLE_TIMEOUT": "-5s"}, nil, "IVRD_IDLE_TIMEOUT"},
		{"flag log level", nil, []string{"--log-level", "loud"}, "log-level: must be one of debug, info, warn, error"},
		{"env log format", map[string]string{"IVRD_LOG_FORMAT": "xml"}, nil, "IVRD_LOG_FORMAT"},
		{"flag trunk", nil, []string{"--sip-trunk", "foo"}, `sip-trunk: "foo": no host`},
		{"trunk transport", nil, []string{"--sip-trunk", "sip:127.0.0.1;transport=sctp"}, "transport must be udp, tcp or tls"},
		{"env int", map[string]string{"IVRD_MAX_CALLS": "lots"}, nil, "IVRD_MAX_CALLS"},
		{"mp3 kbps", nil, []string{"--mp3-kbps", "20"}, "mp3-kbps: 20 is not a multiple of 8"},
		{"mp3 kbps range", nil, []string{"--mp3-kbps", "320"}, "must be between 8 and 64"},
		{"tz", nil, []string{"--tz", "Mars/Olympus"}, "tz"},
		{"rates", nil, []string{"--rates", "+65"}, `rates: bad entry "+65"`},
		{"http", nil, []string{"--http", "8080"}, "http: not host:port"},
		{"external ip", nil, []string{"--external-ip", "example.com"}, "external-ip: not an IP address"},
		{"rtp ports", nil, []string{"--rtp-ports", "20000-10000"}, "rtp-ports"},
		{"sip allow", nil, []string{"--sip-allow", "10.0.0.0/8,nonsense"}, `"nonsense" is not an address`},
		{"tls without cert", nil, []string{"--sip-tls", "127.0.0.1:5061"}, "sip-tls: needs --tls-cert and --tls-key"},
		{"register without user", nil, []string{"--sip-trunk", "sip:127.0.0.1:5070", "--sip-trunk-register"}, "sip-trunk-register: needs"},
		{"public url", nil, []string{"--public-url", "ftp://x"}, "public-url"},
		{"sip from", nil, []string{"--sip-from", "a b"}, "sip-from"},
		{"store scheme", nil, []string{"--store", "mysql://u:p@h/db"}, `scheme "mysql"`},
		{"store database", map[string]string{"IVRD_STORE": "postgres://u:p@127.0.0.1:5432"}, nil, "IVRD_STORE"},
		{"store sslmode", nil, []string{"--store", "postgres://u@h/db?sslmode=sometimes"}, "store:"},
		{"trunk CA missing", nil, []string{"--sip-trunk-ca", "/nonexistent/ca.pem"}, "sip-trunk-ca: open /nonexistent/ca.pem"},
		{"trunk CA not PEM", map[string]string{"IVRD_SIP_TRUNK_CA": "config_test.go"}, nil, "sip-trunk-ca: no PEM certificate in it"},
		{"retention", nil, []string{"--retention", "30d"}, "retention: not a duration"},
		{"env negative retention", map[string]string{"IVRD_RETENTION": "-1h"}, nil, "IVRD_RETENTION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	c, err := parse(t, map[string]string{"IVRD_URL_TTL": "1h", "IVRD_MAX_CALLS": "7", "IVRD_SIP_ALLOW": "10.0.0.0/8"},
		"--url-ttl", "2h", "--rtp-ports", "10000-10100", "--drain-timeout", "0")
	if err != nil {
		t.Fatal(err)
	}
	if c.URLTTL != 2*time.Hour || c.MaxCalls != 7 || len(c.SIPAllow) != 1 || c.SIPAllow[0].String() != "10.0.0.0/8" {
		t.Fatalf("got %+v", c)
	}
	if c.RTPPorts != (PortRange{10000, 10100}) || c.DrainTimeout != 0 {
		t.Fatalf("rtp ports %v drain %v", c.RTPPorts, c.DrainTimeout)
	}
	if c.Retention != 0 {
		t.Fatalf("retention %v by default, want 0 (keep forever)", c.Retention)
	}
	if c, err := parse(t, map[string]string{"IVRD_RETENTION": "720h"}); err != nil || c.Retention != 720*time.Hour {
		t.Fatalf("retention from the environment: %v, %v", c.Retention, err)
	}
	if c.PublicURL != "http://127.0.0.1:8080" {
		t.Fatalf("public url %q", c.PublicURL)
	}
}

func TestTrunkPasswordFromEnvironment(t *testing.T) {
	c, err := parse(t, map[string]string{TrunkPasswordEnv: "env-secret"}, "--sip-trunk", "sip:alice:uri-secret@127.0.0.1:5070;transport=tcp")
	if err != nil {
		t.Fatal(err)
	}
	if c.SIPTrunk.Password != "env-secret" || c.SIPTrunk.User != "alice" || c.SIPTrunk.Transport != "tcp" {
		t.Fatalf("trunk %+v", c.SIPTrunk)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Bind(fs)
	if s := fs.Lookup("sip-trunk").Value.String(); strings.Contains(s, "secret") {
		t.Fatalf("flag value shows the password: %q", s)
	}
}

func TestStore(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil || c.Store != "" {
		t.Fatalf("default store %q, %v; want empty (SQLite)", c.Store, err)
	}
	c, err = parse(t, map[string]string{"IVRD_STORE": "postgres://ivrd:env-secret@127.0.0.1:5432/ivrd?sslmode=disable"})
	if err != nil || c.Store != "postgres://ivrd:env-secret@127.0.0.1:5432/ivrd?sslmode=disable" {
		t.Fatalf("store %q, %v", c.Store, err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Bind(fs)
	if s := fs.Lookup("store").Value.String(); strings.Contains(s, "secret") || !strings.Contains(s, "127.0.0.1:5432/ivrd") {
		t.Fatalf("flag value %q: want the URL without its password", s)
	}
	if _, err := parse(t, map[string]string{"IVRD_STORE": "postgres://u:other-secret@h"}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad store URL: %v; want an error without the password", err)
	}
}

func TestParseTrunk(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Trunk
		str  string
	}{
		{"127.0.0.1:5070", Trunk{Host: "127.0.0.1", Port: 5070, Transport: "udp"}, "sip:127.0.0.1:5070"},
		{"sip:127.0.0.1:5070", Trunk{Host: "127.0.0.1", Port: 5070, Transport: "udp"}, "sip:127.0.0.1:5070"},
		{"sip:alice:s3cret@127.0.0.1:5070;transport=tcp", Trunk{User: "alice", Password: "s3cret", Host: "127.0.0.1", Port: 5070, Transport: "tcp"}, "sip:alice@127.0.0.1:5070;transport=tcp"},
		{"sips:bob@sip.example.com", Trunk{User: "bob", Host: "sip.example.com", Transport: "tls"}, "sip:bob@sip.example.com;transport=tls"},
		{"sip:al%40ice:p%3Ass@[::1]:5080", Trunk{User: "al@ice", Password: "p:ss", Host: "::1", Port: 5080, Transport: "udp"}, "sip:al@ice@[::1]:5080"},
		{"SIP:trunk.example.net;Transport=TLS", Trunk{Host: "trunk.example.net", Transport: "tls"}, "sip:trunk.example.net;transport=tls"},
	} {
		got, err := ParseTrunk(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got != tc.want || got.String() != tc.str {
			t.Errorf("%q: got %+v (%s), want %+v (%s)", tc.in, got, got, tc.want, tc.str)
		}
	}
	for _, bad := range []string{"foo", "sip:", "sip:alice@", "http://x.example", "sip:1.2.3.4:99999", "sip:a b.example", "sip::pw@1.2.3.4"} {
		if _, err := ParseTrunk(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Every serve flag is documented in the README's settings table (as `--name`).
func TestReadmeDocumentsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range FlagNames() {
		if !regexp.MustCompile("`--" + regexp.QuoteMeta(name) + "`").Match(b) {
			t.Errorf("README does not document --%s", name)
		}
		if !strings.Contains(string(b), EnvName(name)) {
			t.Errorf("README does not name %s", EnvName(name))
		}
	}
}

func FuzzParseTrunk(f *testing.F) {
	for _, s := range []string{"sip:alice:s3cret@127.0.0.1:5070;transport=tcp", "127.0.0.1", "sips:[::1]:5061", "sip:a@b@c.d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseTrunk(s)
		if err != nil {
			return
		}
		// What parsed prints back to something that parses to the same trunk (less password).
		again, err := ParseTrunk(tr.String())
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, tr.String(), err)
		}
		tr.Password = ""
		if again != tr && !strings.Contains(tr.User, "@") && !strings.ContainsAny(tr.User, ":;") {
			t.Fatalf("%q → %+v → %q → %+v", s, tr, tr.String(), again)
		}
	})
}

func TestFromUser(t *testing.T) {
	for _, tt := range []struct {
		from, trunkUser, want string
	}{
		{"", "", "ivrd"},
		{"", "alice", "alice"},
		{"+6561234567", "alice", "+6561234567"},
	} {
		c := Config{SIPFrom: tt.from, SIPTrunk: Trunk{User: tt.trunkUser, Host: "trunk.example.com"}}
		if got := c.FromUser(); got != tt.want {
			t.Errorf("--sip-from %q, trunk user %q: FromUser() = %q, want %q", tt.from, tt.trunkUser, got, tt.want)
		}
	}
}

// A bad value that carries a password is refused without showing the password, from a flag
// as from the environment.
func TestSecretsNotEchoed(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--sip-trunk", "sip:alice:hunter2@;transport=sctp"}, "sip-trunk"},
		{nil, []string{"--sip-trunk", "sip:alice:hunter2@host.example:99999"}, "sip-trunk"},
		{map[string]string{"IVRD_SIP_TRUNK": "sip:alice:hunter2@host.example;transport=x"}, nil, "IVRD_SIP_TRUNK"},
		{nil, []string{"--store", "postgres://u:hunter2@/"}, "store"},
		{map[string]string{"IVRD_STORE": "postgres://u:hunter2@/"}, nil, "IVRD_STORE"},
	} {
		var out strings.Builder
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		c := Defaults()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(&out)
		c.Bind(fs)
		err := fs.Parse(tc.args)
		if err == nil {
			err = c.Validate()
		}
		msg := fmt.Sprint(err) + out.String()
		if err == nil || !strings.Contains(msg, tc.want) || strings.Contains(msg, "hunter2") {
			t.Errorf("%v %v: %q; want an error naming %s without the password", tc.env, tc.args, msg, tc.want)
		}
		for k := range tc.env {
			os.Unsetenv(k)
		}
	}
}

// TestConsolePassword: from the flag or IVRD_CONSOLE_PASSWORD (the flag wins), and never shown
// by the usage text.
func TestConsolePassword(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"none", nil, nil, ""},
		{"environment", map[string]string{"IVRD_CONSOLE_PASSWORD": "from env"}, nil, "from env"},
		{"flag wins", map[string]string{"IVRD_CONSOLE_PASSWORD": "from env"}, []string{"--console-password", "from flag"}, "from flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, tc.env, tc.args...)
			if err != nil || c.ConsolePassword != tc.want {
				t.Fatalf("password %q, %v; want %q", c.ConsolePassword, err, tc.want)
			}
		})
	}
	t.Setenv("IVRD_CONSOLE_PASSWORD", "hunter2-secret")
	c := Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var usage strings.Builder
	fs.SetOutput(&usage)
	c.Bind(fs)
	fs.PrintDefaults()
	if c.ConsolePassword != "hunter2-secret" || strings.Contains(usage.String(), "hunter2") || !strings.Contains(usage.String(), "console-password") {
		t.Fatalf("usage shows the password or misses the flag:\n%s", usage.String())
	}
}
