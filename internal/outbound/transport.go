package outbound

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Transport returns the HTTP transport for requests made on an app's behalf, built from base
// (cloned; nil: http.DefaultTransport's settings). Every connection it opens is checked
// against the policy on the resolved address when it is dialled (each address a host resolves
// to in turn; a denied one is skipped like an unreachable one), and only Config.Proxy is used,
// never the environment's. With a proxy, the proxy's own address is what is dialled, so the
// request's host is resolved and checked just before the request goes to the proxy. Requests
// to one of SelfPaths use connections of their own that are never reused for other requests.
func (p *Policy) Transport(base *http.Transport, connectTimeout time.Duration) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	main := p.transport(base, connectTimeout, false)
	if p == nil || len(p.cfg.SelfPaths) == 0 {
		return main
	}
	self := p.transport(base, connectTimeout, true)
	self.DisableKeepAlives = true
	return &split{p: p, main: main, self: self}
}

func (p *Policy) transport(base *http.Transport, connectTimeout time.Duration, selfOK bool) *http.Transport {
	t := base.Clone()
	t.Proxy = p.proxy
	t.DialContext = p.Dialer(connectTimeout, selfOK).DialContext
	return t
}

// Dialer returns a dialer whose every connection is checked against the policy at connect
// time. selfOK lets ivrd's own listener through.
func (p *Policy) Dialer(timeout time.Duration, selfOK bool) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				err = &DeniedError{Reason: "unparsable address " + address}
			} else {
				err = p.Check(ap, selfOK)
			}
			if err != nil {
				p.refused(err, address)
			}
			return err
		}}
}

// proxy is the transports' Proxy function: Config.Proxy for every request (nil: none), after
// checking the request's own host, which ivrd would otherwise never see resolved.
func (p *Policy) proxy(req *http.Request) (*url.URL, error) {
	if p == nil || p.cfg.Proxy == nil {
		return nil, nil
	}
	addrs, err := net.DefaultResolver.LookupHost(req.Context(), strings.Trim(req.URL.Hostname(), "[]"))
	if err != nil {
		return nil, err
	}
	if err := p.CheckURL(req.URL, addrs); err != nil {
		p.refused(err, req.URL.Host)
		return nil, err
	}
	return p.cfg.Proxy, nil
}

// split sends requests to SelfPaths through their own transport.
type split struct {
	p          *Policy
	main, self *http.Transport
}

func (s *split) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.p.selfPath(req.URL.Path) {
		return s.self.RoundTrip(req)
	}
	return s.main.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach both transports.
func (s *split) CloseIdleConnections() {
	s.main.CloseIdleConnections()
	s.self.CloseIdleConnections()
}
