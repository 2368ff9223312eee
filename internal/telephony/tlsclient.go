package telephony

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// ivrd's own TLS connections (to a transport=tls trunk: Dial, Transfer, REGISTER) trust the
// system's certificate authorities and those of Config.TrunkCA, and check the trunk's name (or
// IP address) against its certificate. Their calls offer SDES-SRTP.

// clientTLSConfig is the TLS configuration of ivrd's own connections: the system's
// authorities plus those in caFile ("" for none).
func clientTLSConfig(caFile string) (*tls.Config, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("telephony: trunk CA: %w", err)
		}
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("telephony: trunk CA %s: no PEM certificate in it", caFile)
		}
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// isTLS reports whether requests to uri go over TLS.
func isTLS(uri sip.Uri) bool {
	tp, _ := uri.UriParams.Get("transport")
	return strings.EqualFold(tp, "tls") || strings.EqualFold(uri.Scheme, "sips")
}

// tlsContact is ivrd's Contact in a dialog or registration over TLS with uri when ivrd has no
// TLS listener (nil when it has one, or when uri is not over TLS: diago's Contact applies).
// It names the local address of the TLS connection to uri, opened now if there is none: the
// far end (a proxy reuses connections by address) then sends its requests in the dialog (BYE)
// or to the registration (INVITE) back over that connection, the only way to reach ivrd over
// TLS without a listener.
func (s *Server) tlsContact(ctx context.Context, uri sip.Uri, user string) (*sip.ContactHeader, error) {
	if !isTLS(uri) || s.ls.tls != nil {
		return nil, nil
	}
	req := sip.NewRequest(sip.OPTIONS, *uri.Clone())
	req.SetTransport("TLS")
	req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "TLS", Params: sip.NewParams()})
	conn, err := s.ua.TransportLayer().ClientRequestConnection(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("telephony: TLS connection to %s: %w", uri.HostPort(), err)
	}
	local := conn.LocalAddr()
	_, _ = conn.TryClose() // our reference; the pool keeps the connection for the requests that follow
	ip, port := hostPort(local)
	if !ip.IsValid() {
		return nil, errors.New("telephony: TLS connection without a local address")
	}
	host := ip.String()
	if s.media.external != nil {
		host = s.media.external.String()
	}
	c := contactHeader(user, host, port, "tls")
	return &c, nil
}

// incomingContact is ivrd's Contact for a call that arrived over transport from source: the
// listener's of that transport; for TLS without a TLS listener (the trunk's call came over the
// connection ivrd opened to register), that connection's own address, as tlsContact.
func (s *Server) incomingContact(transport, source string) sip.ContactHeader {
	if transport != "TLS" || s.ls.tls != nil {
		return s.contactFor(transport)
	}
	conn, err := s.ua.TransportLayer().GetConnection("tls", source)
	if err != nil || conn == nil {
		return s.contactFor(transport)
	}
	local := conn.LocalAddr()
	_, _ = conn.TryClose() // the reference GetConnection took
	ip, port := hostPort(local)
	host := ip.String()
	if s.media.external != nil {
		host = s.media.external.String()
	}
	return contactHeader(s.name, host, port, "tls")
}
