// Package softphone places one call with ivrd's own SIP stack (internal/telephony), as a
// person trying ivrd would with a softphone: it plays a file (or a tone: there is no
// microphone), sends DTMF keys, records what it hears to a WAV file, hangs up after a while
// and says how the call went. `ivrd call` is its command.
package softphone

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// The transports a target may name.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

// Default SIP ports (RFC 3261 §19.1.2).
const (
	defaultPort    = 5060
	defaultTLSPort = 5061
)

// Target is where a call goes: sip:User@Host:Port;transport=Transport.
type Target struct {
	User      string // the Request-URI user: the number called, percent-decoded
	Host      string // a name or an IP address (IPv6 without brackets)
	Port      int
	Transport string // TransportUDP, TransportTCP or TransportTLS
}

var errNoUser = errors.New("no user part: call a number, e.g. sip:100@127.0.0.1:5060")

// ParseTarget reads a SIP URI the way a person types one into a softphone:
// [sip:|sips:]user@host[:port][;transport=udp|tcp|tls][;other params]. The scheme may be
// left out (sip:), sips: means TLS, the port defaults to 5060 (5061 over TLS), IPv6 addresses
// go in brackets, and the user part may be percent-encoded (%2B6561234567). Other URI
// parameters (user=phone, …) are accepted and ignored; a password or headers are refused.
func ParseTarget(s string) (Target, error) {
	in := strings.TrimSpace(s)
	fail := func(why string) (Target, error) { return Target{}, fmt.Errorf("call URI %q: %s", s, why) }
	t := Target{Transport: TransportUDP}
	rest, secure, schemed := in, false, true
	switch lower := strings.ToLower(in); {
	case strings.HasPrefix(lower, "sips:"):
		rest, secure, t.Transport = in[len("sips:"):], true, TransportTLS
	case strings.HasPrefix(lower, "sip:"):
		rest = in[len("sip:"):]
	default:
		schemed = false
	}
	if strings.ContainsAny(rest, "?") {
		return fail("URI headers (?…) are not taken")
	}
	rest, params, _ := strings.Cut(rest, ";")
	user, hostport, ok := strings.Cut(rest, "@")
	if !ok {
		return fail(errNoUser.Error())
	}
	if strings.Contains(user, ":") {
		if !schemed {
			return fail("the scheme must be sip: or sips:")
		}
		return fail("a password in the URI is not taken")
	}
	u, err := url.PathUnescape(user)
	if err != nil || u == "" || !printable(u) {
		return fail(errNoUser.Error())
	}
	t.User = u
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return fail(err.Error())
	}
	t.Host, t.Port = host, port
	for _, p := range strings.Split(params, ";") {
		name, value, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "transport") {
			continue
		}
		switch v := strings.ToLower(strings.TrimSpace(value)); v {
		case TransportUDP, TransportTCP, TransportTLS:
			if secure && v != TransportTLS {
				return fail("sips: goes over TLS only")
			}
			t.Transport = v
		default:
			return fail("transport must be udp, tcp or tls")
		}
	}
	if t.Port == 0 {
		t.Port = defaultPort
		if t.Transport == TransportTLS {
			t.Port = defaultTLSPort
		}
	}
	return t, nil
}

// printable reports whether s has no spaces or control characters.
func printable(s string) bool {
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// splitHostPort reads host, host:port, [v6] or [v6]:port; port 0 means none was given.
func splitHostPort(hp string) (string, int, error) {
	if hp == "" {
		return "", 0, errors.New("no host")
	}
	host, portStr := hp, ""
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", 0, errors.New("unclosed [ in the host")
		}
		host = hp[1:end]
		switch after := hp[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			portStr = after[1:]
		default:
			return "", 0, errors.New("junk after the IPv6 address")
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", 0, errors.New("not an IPv6 address in brackets")
		}
	} else if h, p, ok := strings.Cut(hp, ":"); ok {
		host, portStr = h, p
	}
	if !validHost(host) {
		return "", 0, fmt.Errorf("invalid host %q", host)
	}
	port := 0
	if portStr != "" || strings.HasSuffix(hp, ":") {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("invalid port %q", portStr)
		}
		port = n
	}
	return host, port, nil
}

// validHost: an IP address, or a name of letters, digits, '-' and '.'.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// hostPort is host:port, with brackets around an IPv6 host.
func (t Target) hostPort() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// Trunk is the target's server as telephony.DialOptions.Trunk takes it: sip:host:port with
// its transport (the user goes in DialOptions.Dest).
func (t Target) Trunk() string {
	s := "sip:" + t.hostPort()
	if t.Transport != TransportUDP {
		s += ";transport=" + t.Transport
	}
	return s
}

// String is the target as a SIP URI (the user percent-encoded where it must be).
func (t Target) String() string {
	s := "sip:" + url.PathEscape(t.User) + "@" + t.hostPort()
	if t.Transport != TransportUDP {
		s += ";transport=" + t.Transport
	}
	return s
}
