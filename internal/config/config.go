// Package config holds ivrd's settings: embedded defaults, overridden by IVRD_* environment
// variables, overridden by command-line flags.
package config

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of `ivrd serve`.
type Config struct {
	Data          string        // data directory: SQLite database, recordings, caches, secrets
	HTTP          string        // HTTP listen address (API, recordings)
	SIP           string        // SIP listen address (UDP)
	PublicURL     string        // base of the URLs handed to apps (default http://<HTTP>)
	URLTTL        time.Duration // lifetime of signed recording URLs
	IdleTimeout   time.Duration // hang up this long after a notification with no next block
	PrepareBudget time.Duration // how long a request waits for msg synthesis/download
	TimeZone      string        // for the date field of notifications, e.g. "+08:00" or "Asia/Singapore"
	Currency      string
	Rate          float64 // per started minute
	MP3Kbps       int
	Espeak        string        // espeak-ng program
	LogLevel      string        // debug, info, warn, error
	DemoNumber    string        // number routed to the built-in demo app on first start ("" = none)
	DemoListen    time.Duration // how long the demo app lets the caller speak
	SIPTrunk      string        // where Dial and Transfer send calls, e.g. "sip:127.0.0.1:5070" ("" = none)
	RingTimeout   time.Duration // unanswered outbound calls give up after this
	MaxCalls      int           // concurrent calls per app (0 = no limit)
	MaxCallsTotal int           // concurrent incoming calls on this server (0 = no limit)
	Rates         string        // per-minute rates by number prefix: "+65=0.02,+1=0.01" (else Rate)
	PProf         string        // listen address of the net/http/pprof endpoints ("" = off)

	numbers func() error // parses the numeric flags after fs.Parse
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
		TimeZone:      "+08:00",
		Currency:      "SGD",
		MP3Kbps:       32,
		Espeak:        "espeak-ng",
		LogLevel:      "info",
		DemoNumber:    "100",
		RingTimeout:   30 * time.Second,
		DemoListen:    20 * time.Second,
	}
}

// env returns the IVRD_<NAME> variable for flag name, e.g. "url-ttl" -> IVRD_URL_TTL.
func env(name string) (string, bool) {
	return os.LookupEnv("IVRD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
}

// Bind registers the serve flags on fs, with defaults taken from the environment. Errors in
// environment values are reported by Validate.
func (c *Config) Bind(fs *flag.FlagSet) {
	str := func(p *string, name, usage string) {
		if v, ok := env(name); ok {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" (IVRD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+")")
	}
	dur := func(p *time.Duration, name, usage string) {
		if v, ok := env(name); ok {
			if d, err := time.ParseDuration(v); err == nil {
				*p = d
			}
		}
		fs.DurationVar(p, name, *p, usage+" (IVRD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+")")
	}
	str(&c.Data, "data", "data directory")
	str(&c.HTTP, "http", "HTTP listen address")
	str(&c.SIP, "sip", "SIP listen address (UDP)")
	str(&c.PublicURL, "public-url", "base URL apps reach ivrd at (default http://<http>)")
	dur(&c.URLTTL, "url-ttl", "lifetime of signed recording URLs")
	dur(&c.IdleTimeout, "idle-timeout", "hang up after this long with no next block")
	dur(&c.PrepareBudget, "prepare-budget", "how long a request waits for msg synthesis/download")
	str(&c.TimeZone, "tz", "time zone of the notification date field (\"+08:00\" or an IANA name)")
	str(&c.Currency, "currency", "currency of call charges")
	rate := strconv.FormatFloat(c.Rate, 'f', -1, 64)
	str(&rate, "rate", "charge per started minute")
	kbps := strconv.Itoa(c.MP3Kbps)
	str(&kbps, "mp3-kbps", "MP3 bitrate of recordings")
	str(&c.Espeak, "espeak", "espeak-ng program")
	str(&c.LogLevel, "log-level", "debug, info, warn or error")
	str(&c.DemoNumber, "demo-number", "number routed to the built-in demo app on first start (empty: none)")
	dur(&c.DemoListen, "demo-listen", "how long the demo app lets the caller speak")
	str(&c.SIPTrunk, "sip-trunk", "SIP trunk for Dial and Transfer, e.g. sip:127.0.0.1:5070 (empty: none)")
	dur(&c.RingTimeout, "ring-timeout", "outbound calls not answered by then are unanswered")
	maxCalls := strconv.Itoa(c.MaxCalls)
	str(&maxCalls, "max-calls-per-app", "concurrent calls per app (0: no limit)")
	maxTotal := strconv.Itoa(c.MaxCallsTotal)
	str(&maxTotal, "max-calls", "concurrent incoming calls on this server; more get SIP 503 (0: no limit; BENCHMARKS.md shows how many a machine carries)")
	str(&c.Rates, "rates", "per-minute rates by number prefix, e.g. +65=0.02,+1=0.01 (others: --rate)")
	str(&c.PProf, "pprof", "listen address of the Go profiler endpoints /debug/pprof/ (empty: off; keep it on loopback)")
	c.numbers = func() error {
		var err error
		if c.Rate, err = strconv.ParseFloat(rate, 64); err != nil {
			return fmt.Errorf("rate: %w", err)
		}
		if c.MP3Kbps, err = strconv.Atoi(kbps); err != nil {
			return fmt.Errorf("mp3-kbps: %w", err)
		}
		if c.MaxCalls, err = strconv.Atoi(maxCalls); err != nil || c.MaxCalls < 0 {
			return fmt.Errorf("max-calls-per-app: %q", maxCalls)
		}
		if c.MaxCallsTotal, err = strconv.Atoi(maxTotal); err != nil || c.MaxCallsTotal < 0 {
			return fmt.Errorf("max-calls: %q", maxTotal)
		}
		return nil
	}
}

// Validate checks the settings after flags are parsed and fills derived defaults.
func (c *Config) Validate() error {
	if c.numbers != nil {
		if err := c.numbers(); err != nil {
			return err
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTP
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if _, err := c.Location(); err != nil {
		return err
	}
	if _, err := c.RateTable(); err != nil {
		return err
	}
	if c.URLTTL <= 0 || c.IdleTimeout <= 0 || c.PrepareBudget <= 0 {
		return fmt.Errorf("durations must be positive")
	}
	return nil
}

// Location parses TimeZone: a UTC offset like "+08:00" or an IANA zone name.
func (c *Config) Location() (*time.Location, error) {
	tz := c.TimeZone
	if t, err := time.Parse("-07:00", tz); err == nil {
		_, off := t.Zone()
		return time.FixedZone("GMT"+tz, off), nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("tz %q: %w", tz, err)
	}
	return loc, nil
}

// RateTable parses Rates: comma-separated prefix=rate pairs.
func (c *Config) RateTable() (map[string]float64, error) {
	t := map[string]float64{}
	for _, kv := range strings.Split(c.Rates, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || r < 0 || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("rates: bad entry %q (want prefix=rate)", kv)
		}
		t[strings.TrimSpace(k)] = r
	}
	return t, nil
}
