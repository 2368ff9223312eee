package telephony

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// listeners are a server's SIP sockets: UDP and TCP on one address (RFC 3261 §18 makes TCP a
// MUST beside UDP), and TLS on its own when configured.
type listeners struct {
	udp *net.UDPConn
	tcp *net.TCPListener
	tls net.Listener // nil without TLS
}

// bindAttempts is how often a port 0 address is tried before giving up: the UDP port the
// kernel picks may be taken for TCP.
const bindAttempts = 20

// listenSIP binds UDP and TCP on addr (port 0: the same free port for both) and TLS on
// tlsAddr with conf when tlsAddr is set.
func listenSIP(addr, tlsAddr string, conf *tls.Config) (*listeners, error) {
	ls := &listeners{}
	for attempt := 1; ; attempt++ {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("telephony: listen address: %w", err)
		}
		ls.udp, err = net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("telephony: %w", err)
		}
		ta := &net.TCPAddr{IP: ua.IP, Port: ls.udp.LocalAddr().(*net.UDPAddr).Port, Zone: ua.Zone}
		ls.tcp, err = net.ListenTCP("tcp", ta)
		if err == nil {
			break
		}
		ls.udp.Close()
		if ua.Port != 0 || attempt == bindAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("telephony: %w", err)
		}
	}
	if tlsAddr != "" {
		l, err := tls.Listen("tcp", tlsAddr, conf)
		if err != nil {
			ls.close()
			return nil, fmt.Errorf("telephony: %w", err)
		}
		ls.tls = l
	}
	return ls, nil
}

func (ls *listeners) close() {
	ls.udp.Close()
	ls.tcp.Close()
	if ls.tls != nil {
		ls.tls.Close()
	}
}

// loadTLS reads a certificate and its key (PEM) for SIP over TLS.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("telephony: tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// hostPort splits a bound address into its IP and port.
func hostPort(a net.Addr) (netip.Addr, int) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, 0
	}
	return ap.Addr().Unmap(), int(ap.Port())
}

// advertised is the host ivrd names in Contact for a socket bound to ip: the external address
// when set, else ip itself, else (bound to all interfaces) the media address.
func advertised(ip netip.Addr, external string, mediaIP netip.Addr) string {
	switch {
	case external != "":
		return external
	case ip.IsValid() && !ip.IsUnspecified():
		return ip.String()
	}
	return mediaIP.String()
}

func joinHostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
