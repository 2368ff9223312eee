// Package outbound decides where ivrd may connect on behalf of an app (notification
// deliveries, <url> downloads and every redirect hop) and makes the HTTP transports that
// enforce it.
//
// The check runs on the resolved address at dial time (net.Dialer's Control), so a host name
// that resolves to an allowed address when a request is answered and to a denied one later
// (DNS rebinding) is still refused. Denied by default: link-local and cloud metadata
// addresses, 0.0.0.0/8 and ::, multicast and broadcast, and ivrd's own HTTP listener.
// Loopback and private networks are allowed, so apps on the same machine or network work.
package outbound

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrDenied is wrapped by every refusal (a *DeniedError).
var ErrDenied = errors.New("outbound: address denied")

// DeniedError says which address was refused and why.
type DeniedError struct {
	Addr   netip.AddrPort
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("outbound: connection to %s refused: %s", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrDenied) hold.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// builtin is the default deny list, each range with the reason given in refusals.
var builtin = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" range 0.0.0.0/8"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local / cloud metadata range 169.254.0.0/16"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast range 224.0.0.0/4"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast address"},
	{netip.MustParsePrefix("::/128"), "unspecified address ::"},
	{netip.MustParsePrefix("fe80::/10"), "link-local range fe80::/10"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata address fd00:ec2::254"},
	{netip.MustParsePrefix("ff00::/8"), "multicast range ff00::/8"},
}

// Config is a policy's settings.
type Config struct {
	Allow []netip.Prefix // reachable despite the deny lists (not ivrd's own listener)
	Deny  []netip.Prefix // denied on top of the built-in list
	// Self is ivrd's own HTTP listener (the bound address). An unspecified address (0.0.0.0,
	// ::) means every local address at that port. Zero: none.
	Self netip.AddrPort
	// SelfPaths are URL paths on ivrd's own listener that may still be reached: the built-in
	// demo app's notification endpoint (it checks signatures), signed recording URLs played
	// back in a msg. A path ending in "/" covers the clean paths below it.
	SelfPaths []string
	// Proxy, when set, carries every request (HTTP CONNECT for https). Environment proxies
	// (HTTP_PROXY, ...) are never used.
	Proxy *url.URL
	Log   *slog.Logger // refusals are logged at warn level; nil: not logged
}

// Policy is a checked Config. Its methods are safe for concurrent use; a nil *Policy allows
// every address and uses no proxy.
type Policy struct {
	cfg Config

	mu      sync.Mutex
	locals  map[netip.Addr]bool // this machine's interface addresses (for an unspecified Self)
	localAt time.Time
}

// localsTTL is how long the list of local interface addresses is reused.
const localsTTL = 10 * time.Second

// New returns the policy of cfg.
func New(cfg Config) *Policy {
	for i, p := range cfg.Allow {
		cfg.Allow[i] = unmapPrefix(p)
	}
	for i, p := range cfg.Deny {
		cfg.Deny[i] = unmapPrefix(p)
	}
	cfg.Self = netip.AddrPortFrom(cfg.Self.Addr().Unmap(), cfg.Self.Port())
	return &Policy{cfg: cfg}
}

// SelfFromAddr converts a listener's address (net.Listener.Addr) to Config.Self.
func SelfFromAddr(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// Check returns nil when ivrd may connect to ap, else a *DeniedError. selfOK lets ivrd's own
// listener through (a request to one of SelfPaths).
func (p *Policy) Check(ap netip.AddrPort, selfOK bool) error {
	if p == nil {
		return nil
	}
	if !ap.IsValid() {
		return &DeniedError{Addr: ap, Reason: "not an IP address"}
	}
	a := ap.Addr().Unmap().WithZone("")
	if !selfOK && p.isSelf(a, ap.Port()) {
		return &DeniedError{Addr: ap, Reason: "ivrd's own HTTP listener"}
	}
	for _, pr := range p.cfg.Allow {
		if pr.Contains(a) {
			return nil
		}
	}
	for _, pr := range p.cfg.Deny {
		if pr.Contains(a) {
			return &DeniedError{Addr: ap, Reason: "in --outbound-deny range " + pr.String()}
		}
	}
	for _, b := range builtin {
		if b.prefix.Contains(a) {
			return &DeniedError{Addr: ap, Reason: b.reason}
		}
	}
	if a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() {
		return &DeniedError{Addr: ap, Reason: "link-local, multicast or unspecified address"}
	}
	return nil
}

// CheckURL returns nil when ivrd may send a request to u whose host resolved to addrs (IP
// address strings, as net.Resolver.LookupHost returns them) at one of them at least; else
// the refusal of the first address. The port is u's, or the scheme's default.
func (p *Policy) CheckURL(u *url.URL, addrs []string) error {
	if p == nil {
		return nil
	}
	port, err := urlPort(u)
	if err != nil {
		return err
	}
	selfOK := p.selfPath(u.Path)
	var first error
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		err = p.Check(netip.AddrPortFrom(a, port), selfOK)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("%w: %s resolves to no IP address", ErrDenied, u.Hostname())
	}
	return first
}

func urlPort(u *url.URL) (uint16, error) {
	if ps := u.Port(); ps != "" {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("%w: bad port %q", ErrDenied, ps)
		}
		return uint16(n), nil
	}
	if u.Scheme == "https" {
		return 443, nil
	}
	return 80, nil
}

func (p *Policy) selfPath(u string) bool {
	for _, s := range p.cfg.SelfPaths {
		if u == s || strings.HasSuffix(s, "/") && strings.HasPrefix(u, s) && path.Clean(u) == u {
			return true
		}
	}
	return false
}

// isSelf reports whether a:port is ivrd's own listener.
func (p *Policy) isSelf(a netip.Addr, port uint16) bool {
	self := p.cfg.Self
	if !self.IsValid() || port != self.Port() {
		return false
	}
	if !self.Addr().IsUnspecified() {
		return a == self.Addr()
	}
	// Listening on every address: any address of this machine at that port reaches it.
	return a.IsLoopback() || a.IsUnspecified() || p.isLocal(a)
}

func (p *Policy) isLocal(a netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.locals == nil || time.Since(p.localAt) > localsTTL {
		p.locals = map[netip.Addr]bool{}
		p.localAt = time.Now()
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range addrs {
				if n, ok := ia.(*net.IPNet); ok {
					if la, ok := netip.AddrFromSlice(n.IP); ok {
						p.locals[la.Unmap()] = true
					}
				}
			}
		}
	}
	return p.locals[a]
}

// refused logs a refusal.
func (p *Policy) refused(err error, what string) {
	if p != nil && p.cfg.Log != nil {
		p.cfg.Log.Warn("outbound: connection refused by policy", "to", what, "err", err)
	}
}
