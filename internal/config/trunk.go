package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Trunk is the SIP trunk of --sip-trunk: where Dial and Transfer send calls, with the
// credentials its digest challenges are answered with and the transport to reach it by.
type Trunk struct {
	User      string // digest user name (and REGISTER user); "" when the trunk needs none
	Password  string // never logged; IVRD_SIP_TRUNK_PASSWORD overrides the URI's
	Host      string
	Port      int    // 0: the transport's default (5060, 5061 for TLS)
	Transport string // "udp", "tcp" or "tls"
}

// FromUser is the From user of outbound calls without caller_id: --sip-from, else the
// trunk's user, else "ivrd".
func (c Config) FromUser() string {
	switch {
	case c.SIPFrom != "":
		return c.SIPFrom
	case c.SIPTrunk.User != "":
		return c.SIPTrunk.User
	}
	return "ivrd"
}

// IsZero reports whether no trunk is configured.
func (t Trunk) IsZero() bool { return t.Host == "" }

// String is the trunk's URI without the password, for logs and messages.
func (t Trunk) String() string {
	if t.IsZero() {
		return ""
	}
	var b strings.Builder
	b.WriteString("sip:")
	if t.User != "" {
		b.WriteString(t.User)
		b.WriteByte('@')
	}
	b.WriteString(t.HostPort())
	if t.Transport != "" && t.Transport != "udp" {
		b.WriteString(";transport=" + t.Transport)
	}
	return b.String()
}

// HostPort is "host:port" (the port only when given), IPv6 hosts bracketed.
func (t Trunk) HostPort() string {
	h := t.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if t.Port == 0 {
		return h
	}
	return h + ":" + strconv.Itoa(t.Port)
}

// ParseTrunk parses a trunk URI: [sip:|sips:][user[:password]@]host[:port][;transport=udp|tcp|tls].
// sips: means TLS. An empty string is no trunk.
func ParseTrunk(s string) (Trunk, error) {
	var t Trunk
	s = strings.TrimSpace(s)
	if s == "" {
		return t, nil
	}
	rest := s
	lower := strings.ToLower(rest)
	switch {
	case strings.HasPrefix(lower, "sips:"):
		rest, t.Transport = rest[5:], "tls"
	case strings.HasPrefix(lower, "sip:"):
		rest = rest[4:]
	case strings.Contains(lower, "://"):
		return t, fmt.Errorf("not a SIP URI (sip:[user[:password]@]host[:port][;transport=udp|tcp|tls])")
	}
	rest, params, _ := strings.Cut(rest, ";")
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		userinfo := rest[:i]
		rest = rest[i+1:]
		user, pass, _ := strings.Cut(userinfo, ":")
		var err error
		if t.User, err = url.PathUnescape(user); err != nil || t.User == "" {
			return Trunk{}, fmt.Errorf("bad user part")
		}
		if t.Password, err = url.PathUnescape(pass); err != nil {
			return Trunk{}, fmt.Errorf("bad password part")
		}
	}
	host, port := rest, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return Trunk{}, fmt.Errorf("bad IPv6 host")
		}
		host, port = host[1:end], strings.TrimPrefix(host[end+1:], ":")
	} else if h, p, ok := strings.Cut(host, ":"); ok {
		host, port = h, p
	}
	if !validHost(host) {
		return Trunk{}, fmt.Errorf("no host, or not a host name or address (sip:[user[:password]@]host[:port][;transport=udp|tcp|tls])")
	}
	t.Host = host
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return Trunk{}, fmt.Errorf("bad port %q", port)
		}
		t.Port = p
	}
	for _, kv := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if !strings.EqualFold(k, "transport") {
			continue
		}
		v = strings.ToLower(v)
		if v != "udp" && v != "tcp" && v != "tls" {
			return Trunk{}, fmt.Errorf("transport must be udp, tcp or tls")
		}
		t.Transport = v
	}
	if t.Transport == "" {
		t.Transport = "udp"
	}
	return t, nil
}

// validHost accepts IP addresses and DNS names (letters, digits, '-', '.').
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if strings.Contains(h, ":") { // IPv6, already unbracketed
		return true
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	// "foo" alone is a valid DNS name but never a trunk anyone means: require a dot or an
	// address, so that a mistyped flag value is refused rather than dialled.
	return strings.Contains(h, ".") || h == "localhost"
}
