// Package config holds ivrd's settings: embedded defaults, overridden by IVRD_* environment
// variables, overridden by command-line flags. Every setting is declared once, in Bind, with
// a typed value that checks it: a bad value, from a flag or from the environment, is refused
// with the setting's name and the reason before anything is created or started.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// Config is every setting of `ivrd serve`. Field names follow the flag names.
type Config struct {
	Data          string        // data directory: SQLite database, recordings, caches, secrets
	Store         string        // PostgreSQL URL for the metadata ("" = SQLite in Data)
	HTTP          string        // HTTP listen address (API, recordings)
	SIP           string        // SIP listen address (UDP and TCP)
	SIPTLS        string        // SIP over TLS listen address ("" = none)
	TLSCert       string        // certificate file for SIP over TLS
	TLSKey        string        // private key file for SIP over TLS
	ExternalIP    string        // address advertised in Via/Contact/SDP behind 1:1 NAT ("" = the bound one)
	RTPPorts      PortRange     // RTP port range (zero: any)
	PublicURL     string        // base of the URLs handed to apps (default http://<HTTP>)
	URLTTL        time.Duration // lifetime of signed recording URLs
	Retention     time.Duration // recordings are deleted this long after they were stored (0: kept forever)
	IdleTimeout   time.Duration // hang up this long after a notification with no next block
	PrepareBudget time.Duration // how long a request waits for msg synthesis/download
	TZ            string        // for the date field of notifications, e.g. "+08:00" or "Asia/Singapore"
	Currency      string
	Rate          float64 // per started minute
	Rates         string  // per-minute rates by number prefix: "+65=0.02,+1=0.01" (else Rate)
	MP3Kbps       int
	Espeak        string // espeak-ng program
	LogLevel      string // debug, info, warn, error
	LogFormat     string // text, json
	DemoNumber    string // number routed to the built-in demo app on first start ("" = none)
	DemoListen    time.Duration

	SIPTrunk         Trunk          // where Dial and Transfer send calls (zero: none)
	SIPTrunkRegister bool           // REGISTER to the trunk with its credentials
	SIPTrunkCA       string         // authorities (PEM) trusted for SIP over TLS to the trunk, beside the system's
	SIPFrom          string         // From user of outbound calls without caller_id ("": see FromUser)
	SIPAllow         []netip.Prefix // sources that may send INVITEs (empty: any)
	SIPInviteRate    float64        // INVITEs per second per source address (0: no limit)
	RingTimeout      time.Duration  // unanswered outbound calls give up after this
	MaxCallsPerApp   int            // concurrent calls per app (0 = no limit)
	MaxCalls         int            // concurrent incoming calls on this server (0 = no limit)

	HTTPMaxConns  int            // concurrent HTTP connections (0: a share of the fd limit)
	APIRate       float64        // API requests per second per app (0: no limit)
	APIBurst      int            // API requests an app may send at once above the rate (0: 2 × rate)
	OutboundAllow []netip.Prefix // addresses ivrd may connect to despite the deny list
	OutboundDeny  []netip.Prefix // addresses ivrd never connects to (on top of the built-in list)
	OutboundProxy string         // HTTP proxy for notifications and <url> downloads ("" = none)
	DrainTimeout  time.Duration  // on SIGTERM, let live calls finish for this long (0: hang up at once)

	PProf string // listen address of the net/http/pprof endpoints ("" = off)

	ConsolePassword string // the console's operator password ("" = operator sign-in off); never logged

	ClusterSecret string // authenticates API requests nodes forward to each other ("" = no forwarding); never logged
	NodeURL       string // base URL other nodes reach this node's API at ("" = http://<the bound HTTP address>)

	Blob          Blob   // where recordings are kept (zero: local disk in the data directory)
	RecordingURLs string // monitor_url/record_url: RecordingURLsProxy or RecordingURLsPresigned

	errs []error // bad environment values, reported by Validate
}

// Defaults are the embedded defaults.
func Defaults() Config {
	return Config{
		Data:          "./data",
		HTTP:          "127.0.0.1:8080",
		SIP:           "127.0.0.1:5060",
		URLTTL:        7 * 24 * time.Hour,
		IdleTimeout:   60 * time.Second,
		PrepareBudget: 10 * time.Second,
		TZ:            "+08:00",
		Currency:      "SGD",
		MP3Kbps:       32,
		Espeak:        "espeak-ng",
		LogLevel:      "info",
		LogFormat:     "text",
		DemoNumber:    "100",
		DemoListen:    20 * time.Second,
		RingTimeout:   30 * time.Second,
		RecordingURLs: RecordingURLsProxy,
	}
}

// EnvName is the environment variable of a setting: "url-ttl" → IVRD_URL_TTL.
func EnvName(flagName string) string {
	return "IVRD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// TrunkPasswordEnv overrides the password of --sip-trunk (keeps it out of the process list).
const TrunkPasswordEnv = "IVRD_SIP_TRUNK_PASSWORD"

// Bind registers the serve flags on fs, with defaults taken from the environment. Bad
// environment values are reported by Validate.
func (c *Config) Bind(fs *flag.FlagSet) {
	settings := []struct {
		name  string
		v     flag.Value
		usage string
	}{
		{"data", stringValue{p: &c.Data, check: nonEmpty}, "data directory (database, recordings, caches, URL-signing key)"},
		{"store", storeValue{p: &c.Store}, "PostgreSQL for apps, numbers, sessions and notifications: postgres://user:password@host:port/database?sslmode=disable (empty: SQLite in the data directory)"},
		{"http", stringValue{p: &c.HTTP, check: hostPort}, "HTTP listen address (API, recordings)"},
		{"sip", stringValue{p: &c.SIP, check: hostPort}, "SIP listen address, UDP and TCP"},
		{"sip-tls", stringValue{p: &c.SIPTLS, check: optionalHostPort}, "SIP over TLS listen address (needs --tls-cert and --tls-key; empty: none)"},
		{"tls-cert", stringValue{p: &c.TLSCert}, "certificate file (PEM) for SIP over TLS"},
		{"tls-key", stringValue{p: &c.TLSKey}, "private key file (PEM) for SIP over TLS"},
		{"external-ip", stringValue{p: &c.ExternalIP, check: ipAddress}, "address advertised in Via, Contact and SDP when behind 1:1 NAT (empty: the bound address)"},
		{"rtp-ports", portRangeValue{p: &c.RTPPorts}, "RTP port range LOW-HIGH, e.g. 10000-20000 (empty: any free port)"},
		{"public-url", stringValue{p: &c.PublicURL, check: httpURL}, "base URL apps reach ivrd at (default http://<http>)"},
		{"url-ttl", durationValue{p: &c.URLTTL}, "lifetime of signed recording URLs"},
		{"retention", durationValue{p: &c.Retention, allowZero: true}, "delete recordings (file and listing) this long after they were stored, e.g. 720h (0: keep them forever)"},
		{"idle-timeout", durationValue{p: &c.IdleTimeout}, "hang up after this long with no next block"},
		{"prepare-budget", durationValue{p: &c.PrepareBudget}, "how long a request waits for msg synthesis/download"},
		{"tz", stringValue{p: &c.TZ, check: checkTZ}, "time zone of the notification date field (\"+08:00\" or an IANA name)"},
		{"currency", stringValue{p: &c.Currency, check: nonEmpty}, "currency of call charges"},
		{"rate", floatValue{p: &c.Rate}, "charge per started minute"},
		{"rates", stringValue{p: &c.Rates, check: func(s string) error { _, err := parseRates(s); return err }}, "per-minute rates by number prefix, e.g. +65=0.02,+1=0.01 (others: --rate)"},
		{"mp3-kbps", intValue{p: &c.MP3Kbps, min: 8, max: 64}, "MP3 bitrate of recordings (8-64, a multiple of 8)"},
		{"espeak", stringValue{p: &c.Espeak, check: nonEmpty}, "espeak-ng program (text-to-speech)"},
		{"log-level", stringValue{p: &c.LogLevel, check: oneOf("debug", "info", "warn", "error")}, "debug, info, warn or error"},
		{"log-format", stringValue{p: &c.LogFormat, check: oneOf("text", "json")}, "text or json"},
		{"demo-number", stringValue{p: &c.DemoNumber}, "number routed to the built-in demo app (empty: none)"},
		{"demo-listen", durationValue{p: &c.DemoListen}, "how long the demo app lets the caller speak"},
		{"sip-trunk", trunkValue{p: &c.SIPTrunk}, "SIP trunk for Dial and Transfer: sip:[user[:password]@]host[:port][;transport=udp|tcp|tls] (empty: none)"},
		{"sip-trunk-register", boolValue{p: &c.SIPTrunkRegister}, "REGISTER to the trunk with its credentials (incoming calls from registration-based providers)"},
		{"sip-trunk-ca", stringValue{p: &c.SIPTrunkCA}, "certificate authorities (PEM) trusted for a transport=tls trunk, beside the system's (empty: the system's only)"},
		{"sip-from", stringValue{p: &c.SIPFrom, check: sipUser}, "From user of outbound calls without caller_id (default: the trunk user, else ivrd)"},
		{"sip-allow", prefixesValue{p: &c.SIPAllow}, "sources allowed to send INVITEs, CIDR,... (others get 403; empty: any)"},
		{"sip-invite-rate", floatValue{p: &c.SIPInviteRate}, "INVITEs per second per source address; more get 503 with Retry-After (0: no limit)"},
		{"ring-timeout", durationValue{p: &c.RingTimeout}, "outbound calls not answered by then are unanswered"},
		{"max-calls-per-app", intValue{p: &c.MaxCallsPerApp, min: 0, max: 1 << 30}, "concurrent calls per app; incoming over the limit get SIP 486 (0: no limit)"},
		{"max-calls", intValue{p: &c.MaxCalls, min: 0, max: 1 << 30}, "concurrent incoming calls on this server; more get SIP 503 (0: no limit; BENCHMARKS.md shows how many a machine carries)"},
		{"http-max-conns", intValue{p: &c.HTTPMaxConns, min: 0, max: 1 << 30}, "concurrent HTTP connections (0: half the open-file limit)"},
		{"api-rate", floatValue{p: &c.APIRate}, "API requests per second per app; more get error_rate_limit_exceeded (0: no limit)"},
		{"api-burst", intValue{p: &c.APIBurst, min: 0, max: 1 << 30}, "API requests an app may send at once above --api-rate (0: twice the rate)"},
		{"outbound-allow", prefixesValue{p: &c.OutboundAllow}, "addresses notifications and <url> downloads may reach despite the deny list, CIDR,..."},
		{"outbound-deny", prefixesValue{p: &c.OutboundDeny}, "addresses notifications and <url> downloads never reach, on top of the built-in list, CIDR,..."},
		{"outbound-proxy", stringValue{p: &c.OutboundProxy, check: httpURL}, "HTTP proxy for notifications and <url> downloads (empty: none; environment proxies are ignored)"},
		{"drain-timeout", durationValue{p: &c.DrainTimeout, allowZero: true}, "on SIGTERM, refuse new calls and let live ones finish for this long (0: hang up at once)"},
		{"blob", blobValue{p: &c.Blob}, "where recordings are kept: s3://BUCKET?endpoint=http://HOST:PORT&region=R, credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (empty: the data directory)"},
		{"recording-urls", stringValue{p: &c.RecordingURLs, check: oneOf(RecordingURLsProxy, RecordingURLsPresigned)}, "recording URLs handed to apps: proxy (ivrd's signed URLs, streamed from the store) or presigned (the S3 store's own, needs --blob s3://...)"},
		{"console-password", secretValue{p: &c.ConsolePassword}, "operator password of the console at /console/, which sees every app (empty: apps sign in with their own credentials only)"},
		{"cluster-secret", secretValue{p: &c.ClusterSecret}, "secret shared by the nodes of a cluster (one PostgreSQL store): API requests for a session another node carries are forwarded to it, authenticated with it (empty: not forwarded)"},
		{"node-url", stringValue{p: &c.NodeURL, check: httpURL}, "base URL the other nodes of a cluster reach this node's API at (empty: http://<the bound HTTP address>)"},
		{"pprof", stringValue{p: &c.PProf, check: optionalHostPort}, "listen address of the Go profiler endpoints /debug/pprof/ (empty: off; keep it on loopback)"},
	}
	for _, s := range settings {
		env := EnvName(s.name)
		if v, ok := os.LookupEnv(env); ok {
			if err := s.v.Set(v); err != nil {
				shown := v
				if r, ok := s.v.(redacter); ok {
					shown = r.redact(v)
				}
				c.errs = append(c.errs, fmt.Errorf("%s=%q: %w", env, shown, err))
			}
		}
		v := s.v
		if r, ok := v.(redacter); ok {
			v = quietValue{Value: v, name: s.name, redact: r.redact, errs: &c.errs}
		}
		fs.Var(v, s.name, s.usage+" ("+env+")")
	}
}

// quietValue wraps a flag whose text may hold a secret (a password in a URL): a bad value is
// kept for Validate, shown redacted, instead of failing Set, which would make the flag
// package print the value as typed.
type quietValue struct {
	flag.Value
	name   string
	redact func(string) string
	errs   *[]error
}

func (q quietValue) Set(s string) error {
	if err := q.Value.Set(s); err != nil {
		*q.errs = append(*q.errs, fmt.Errorf("%s: %q: %w", q.name, q.redact(s), err))
	}
	return nil
}

// trunkValue parses --sip-trunk (Validate applies IVRD_SIP_TRUNK_PASSWORD).
type trunkValue struct{ p *Trunk }

// trunkPassword matches the password of a trunk URI's user part.
var trunkPassword = regexp.MustCompile(`^((?i:sips?:)?[^:@;]*:)[^@;]*@`)

func (trunkValue) redact(s string) string { return trunkPassword.ReplaceAllString(s, "${1}***@") }

func (v trunkValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String() // never the password
}

func (v trunkValue) Set(s string) error {
	t, err := ParseTrunk(s)
	if err != nil {
		return err
	}
	*v.p = t
	return nil
}

// redacter is a flag.Value whose raw text may hold a secret: errors show redact's text.
type redacter interface{ redact(string) string }

// storeValue parses --store: "" (SQLite) or a PostgreSQL URL, shown without its password.
type storeValue struct{ p *string }

// StoreValue is the --store flag of the admin commands, checked and shown as serve's.
func StoreValue(p *string) flag.Value { return storeValue{p} }

func (storeValue) redact(s string) string { return store.RedactURL(s) }

func (v storeValue) String() string {
	if v.p == nil || *v.p == "" {
		return ""
	}
	return store.RedactURL(*v.p)
}

func (v storeValue) Set(s string) error {
	if s != "" {
		if err := store.CheckPostgresURL(s); err != nil {
			return err
		}
	}
	*v.p = s
	return nil
}

// Validate checks the settings after flags are parsed and fills derived defaults. It
// reports every problem at once, each with its setting's name.
func (c *Config) Validate() error {
	errs := c.errs
	if p, ok := os.LookupEnv(TrunkPasswordEnv); ok && p != "" {
		c.SIPTrunk.Password = p
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTP
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.MP3Kbps%8 != 0 {
		errs = append(errs, fmt.Errorf("mp3-kbps: %d is not a multiple of 8", c.MP3Kbps))
	}
	if c.SIPTLS != "" && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, errors.New("sip-tls: needs --tls-cert and --tls-key"))
	}
	for _, f := range []struct{ name, path string }{{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if c.SIPTrunkCA != "" {
		if err := checkCAFile(c.SIPTrunkCA); err != nil {
			errs = append(errs, fmt.Errorf("sip-trunk-ca: %w", err))
		}
	}
	if c.SIPTrunkRegister && (c.SIPTrunk.IsZero() || c.SIPTrunk.User == "") {
		errs = append(errs, errors.New("sip-trunk-register: needs a --sip-trunk with a user (sip:user:password@host)"))
	}
	if c.SIPTrunk.Password != "" && c.SIPTrunk.User == "" {
		errs = append(errs, errors.New("sip-trunk: a password needs a user (sip:user:password@host)"))
	}
	errs = append(errs, c.validateBlob()...)
	return errors.Join(errs...)
}

// Location parses TZ: a UTC offset like "+08:00" or an IANA zone name.
func (c *Config) Location() (*time.Location, error) {
	return parseTZ(c.TZ)
}

func parseTZ(tz string) (*time.Location, error) {
	if t, err := time.Parse("-07:00", tz); err == nil {
		_, off := t.Zone()
		return time.FixedZone("GMT"+tz, off), nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		return nil, fmt.Errorf("not a UTC offset (+08:00) or IANA zone name (Asia/Singapore)")
	}
	return loc, nil
}

func checkTZ(s string) error { _, err := parseTZ(s); return err }

// RateTable parses Rates: comma-separated prefix=rate pairs.
func (c *Config) RateTable() (map[string]float64, error) { return parseRates(c.Rates) }

func parseRates(s string) (map[string]float64, error) {
	t := map[string]float64{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || r < 0 || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("bad entry %q (want prefix=rate)", kv)
		}
		t[strings.TrimSpace(k)] = r
	}
	return t, nil
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// sipUser accepts what can stand as a SIP user part verbatim (or empty).
func sipUser(s string) error {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.ContainsRune("+-_.!~*'()", c)) {
			return fmt.Errorf("%q is not a SIP user part (letters, digits, +-_.!~*'())", s)
		}
	}
	return nil
}

// FlagNames lists every serve flag, sorted (the README documents each; a test checks).
func FlagNames() []string {
	c := Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.Bind(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	return names
}
