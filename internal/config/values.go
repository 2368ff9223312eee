package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// The flag.Value types of the settings. Each parses and checks its value in Set, so a bad value
// is refused with the setting's name and the reason whether it came from a flag or from the
// environment, before anything is created or started.

type stringValue struct {
	p     *string
	check func(string) error // nil: anything goes
}

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v stringValue) Set(s string) error {
	if v.check != nil {
		if err := v.check(s); err != nil {
			return err
		}
	}
	*v.p = s
	return nil
}

// secretValue is a string that is never shown: not in usage (flag's default), not in logs.
type secretValue struct{ p *string }

func (v secretValue) String() string { return "" }

func (v secretValue) Set(s string) error {
	*v.p = s
	return nil
}

type durationValue struct {
	p         *time.Duration
	allowZero bool
}

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (e.g. 30s, 5m, 168h)")
	}
	if d < 0 || (d == 0 && !v.allowZero) {
		return fmt.Errorf("must be positive")
	}
	*v.p = d
	return nil
}

type intValue struct {
	p        *int
	min, max int
}

func (v intValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not a whole number")
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("must be between %d and %d", v.min, v.max)
	}
	*v.p = n
	return nil
}

type floatValue struct{ p *float64 }

func (v floatValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatFloat(*v.p, 'f', -1, 64)
}

func (v floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 {
		return fmt.Errorf("not a number ≥ 0")
	}
	*v.p = f
	return nil
}

type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not true or false")
	}
	*v.p = b
	return nil
}

func (v boolValue) IsBoolFlag() bool { return true }

// prefixesValue is a comma-separated list of CIDR prefixes or single addresses.
type prefixesValue struct{ p *[]netip.Prefix }

func (v prefixesValue) String() string {
	if v.p == nil {
		return ""
	}
	s := make([]string, len(*v.p))
	for i, p := range *v.p {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (v prefixesValue) Set(s string) error {
	ps, err := ParsePrefixes(s)
	if err != nil {
		return err
	}
	*v.p = ps
	return nil
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes ("10.0.0.0/8") and single
// addresses ("192.0.2.7", taken as /32 or /128). An empty string is an empty list.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// PortRange is an inclusive range of UDP ports; the zero value means any port.
type PortRange struct{ Low, High int }

// IsZero reports whether the range is unset (any port).
func (r PortRange) IsZero() bool { return r.Low == 0 && r.High == 0 }

func (r PortRange) String() string {
	if r.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d-%d", r.Low, r.High)
}

type portRangeValue struct{ p *PortRange }

func (v portRangeValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v portRangeValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		*v.p = PortRange{}
		return nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("not LOW-HIGH (e.g. 10000-20000)")
	}
	// RTP takes an even port and the odd one above it for RTCP: a range needs two ports.
	if l < 1024 || h > 65535 || h-l < 1 {
		return fmt.Errorf("must be within 1024-65535 and hold at least two ports")
	}
	*v.p = PortRange{Low: l, High: h}
	return nil
}

// check helpers for stringValue.

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, v := range vals {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

// hostPort accepts "host:port" (host may be empty for all interfaces).
func hostPort(s string) error {
	_, port, err := splitHostPort(s)
	if err != nil {
		return err
	}
	if port < 0 || port > 65535 {
		return fmt.Errorf("port out of range")
	}
	return nil
}

// optionalHostPort is hostPort, or empty for "off".
func optionalHostPort(s string) error {
	if s == "" {
		return nil
	}
	return hostPort(s)
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("not host:port")
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	p, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("not host:port")
	}
	return host, p, nil
}

func ipAddress(s string) error {
	if s == "" {
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("not an IP address")
	}
	return nil
}

func httpURL(s string) error {
	if s == "" {
		return nil
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("not an http:// or https:// URL")
	}
	return nil
}

// checkCAFile checks that path is a PEM file holding at least one certificate.
func checkCAFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return errors.New("no PEM certificate in it")
	}
	return nil
}
