// Package telephony is ivrd's SIP/RTP layer: it accepts incoming calls over SIP (UDP, TCP and
// TLS) and carries their audio as G.711 RTP (SRTP on calls over TLS), on top of
// github.com/emiago/diago and sipgo.
//
// Each call is a Leg, incoming or placed by Server.Dial. From the answer to the hang-up the
// leg's pacer sends a 20 ms frame every 20 ms (what Play plays, or silence) and, for an
// incoming call, then takes what the caller sent meanwhile (a dialled call's RTP has a reader
// goroutine): it is decoded into 8 kHz PCM for the leg's tap, and DTMF (RFC 4733
// telephone-events, or SIP INFO) becomes keys. Bridge connects two legs and a Room up to eight; their mixer
// then sends each leg what it hears.
//
// Incoming calls are admitted (allow list, INVITE rate, merged requests, extensions, offer:
// see admission) before they ring; their media is negotiated by ivrd (callMedia), which
// latches onto the caller's RTP (symmetric RTP for callers behind NAT, see latch), follows
// holds, re-INVITEs and UPDATEs, and answers INVITEs without SDP.
package telephony

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Config configures a Server.
type Config struct {
	Listen    string // SIP over UDP and TCP, e.g. "127.0.0.1:5060"; port 0 picks a free port (the same for both)
	ListenTLS string // SIP over TLS, e.g. "0.0.0.0:5061" ("": none); needs TLSCert and TLSKey
	TLSCert   string // certificate (PEM) for SIP over TLS
	TLSKey    string // its private key (PEM)
	// TrunkCA holds certificate authorities (PEM) trusted for ivrd's own TLS connections (to a
	// transport=tls trunk), beside the system's ("": the system's only).
	TrunkCA string
	// ExternalIP is the address advertised in Via, Contact and SDP c= lines when ivrd sits
	// behind 1:1 NAT ("": the bound address).
	ExternalIP string
	// RTPPortLow and RTPPortHigh bound the RTP ports (both 0: any free port). diago's own
	// range (for dialled calls) is a process-wide setting: the first server that sets a
	// range sets it.
	RTPPortLow, RTPPortHigh int
	Allow                   []netip.Prefix // sources that may send INVITEs (empty: any); others get 403
	InviteRate              float64        // INVITEs a second per source address (0: no limit); more get 503
	UserAgent               string         // User-Agent and Contact user; default "ivrd"
	Log                     *slog.Logger   // default slog.Default()
}

// shutdownGrace bounds how long Serve spends hanging up calls when its context ends.
const shutdownGrace = 6 * time.Second

// Server accepts incoming SIP calls and places outgoing ones (Dial) from the same sockets.
type Server struct {
	log   *slog.Logger
	ls    *listeners
	conn  net.PacketConn // ls.udp
	ua    *sipgo.UserAgent
	sip   *sipgo.Server
	dg    *diago.Diago
	name  string
	media *mediaConfig
	adm   *admission
	// contacts is ivrd's Contact per transport ("UDP", "TCP", "TLS").
	contacts map[string]sip.ContactHeader

	mu      sync.Mutex
	serving bool
	closed  bool
	legs    map[string]*Leg          // by SIP dialog ID
	calls   sync.WaitGroup           // INVITE handlers and answered outgoing calls
	stop    chan struct{}            // closed at shutdown: dials in progress give up
	ready   chan struct{}            // closed once sipgo serves the socket (Dial needs it)
	clients map[string]*sipgo.Client // ivrd's own requests outside diago's dialogs, by transport
	// drainUntil is set while the server drains: new INVITEs are refused until then.
	drainUntil time.Time

	recovered recovered // calls a crashed process carried, ended by this one
}

var diagoPortsOnce sync.Once

// NewServer binds the SIP sockets (so Addr is known at once) and prepares the SIP stack. Call
// Serve to start taking calls.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:5060"
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "ivrd"
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	var extIP net.IP
	if cfg.ExternalIP != "" {
		if extIP = net.ParseIP(cfg.ExternalIP); extIP == nil {
			return nil, fmt.Errorf("telephony: external address %q is not an IP address", cfg.ExternalIP)
		}
	}
	if lo, hi := cfg.RTPPortLow, cfg.RTPPortHigh; lo != 0 || hi != 0 {
		if lo < 1 || hi > 65535 || hi-lo < 1 {
			return nil, fmt.Errorf("telephony: RTP port range %d-%d", lo, hi)
		}
	}
	var tlsConf *tls.Config
	if cfg.ListenTLS != "" {
		var err error
		if tlsConf, err = loadTLS(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
	}
	ls, err := listenSIP(cfg.Listen, cfg.ListenTLS, tlsConf)
	if err != nil {
		return nil, err
	}
	host, port := hostPort(ls.udp.LocalAddr())
	mediaIP := host
	if !host.IsValid() || host.IsUnspecified() {
		ip, _, err := sip.ResolveInterfacesIP("ip4", nil)
		if err != nil {
			ls.close()
			return nil, fmt.Errorf("telephony: no address for media: %w", err)
		}
		mediaIP, _ = netip.AddrFromSlice(ip.To4())
	}

	clientTLS, err := clientTLSConfig(cfg.TrunkCA)
	if err != nil {
		ls.close()
		return nil, err
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.UserAgent), sipgo.WithUserAgenTLSConfig(clientTLS))
	if err != nil {
		ls.close()
		return nil, fmt.Errorf("telephony: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ls.close()
		ua.Close()
		return nil, fmt.Errorf("telephony: %w", err)
	}
	s := &Server{log: log, ls: ls, conn: ls.udp, ua: ua, sip: srv, name: cfg.UserAgent,
		media:    &mediaConfig{ip: mediaIP, external: extIP, ports: &portRange{low: cfg.RTPPortLow, high: cfg.RTPPortHigh}, codecs: defaultCodecs()},
		adm:      newAdmission(cfg.Allow, cfg.InviteRate, log),
		contacts: map[string]sip.ContactHeader{},
		legs:     map[string]*Leg{}, stop: make(chan struct{}), ready: make(chan struct{})}
	if cfg.RTPPortLow != 0 {
		diagoPortsOnce.Do(func() { media.RTPPortStart, media.RTPPortEnd = cfg.RTPPortLow, cfg.RTPPortHigh })
	}

	// We serve the sockets ourselves (diago's Serve would bind its own), so the transports
	// are declared with the ports already bound: diago builds Contact and the clients from them.
	hostStr := host.String()
	adv := advertised(host, cfg.ExternalIP, mediaIP)
	opts := []diago.DiagoOption{diago.WithLogger(log), diago.WithServer(srv), diago.WithServerRequestMiddleware(s.middleware)}
	for _, tr := range []string{"udp", "tcp"} {
		opts = append(opts, diago.WithTransport(diago.Transport{Transport: tr, BindHost: hostStr, BindPort: port,
			ExternalHost: cfg.ExternalIP, MediaExternalIP: extIP}))
		s.contacts[strings.ToUpper(tr)] = contactHeader(cfg.UserAgent, adv, port, tr)
	}
	if ls.tls != nil {
		th, tp := hostPort(ls.tls.Addr())
		opts = append(opts, diago.WithTransport(diago.Transport{Transport: "tls", BindHost: th.String(), BindPort: tp,
			ExternalHost: cfg.ExternalIP, MediaExternalIP: extIP, TLSConf: tlsConf, MediaSRTP: 1, TLSURINoSIPS: true}))
		s.contacts["TLS"] = contactHeader(cfg.UserAgent, advertised(th, cfg.ExternalIP, mediaIP), tp, "tls")
	} else {
		// Outbound only (a transport=tls trunk): the dialogs' Contact is the connection's own
		// address (tlsContact), SRTP is offered as on the listener's calls.
		opts = append(opts, diago.WithTransport(diago.Transport{Transport: "tls", BindHost: hostStr, BindPort: port,
			ExternalHost: cfg.ExternalIP, MediaExternalIP: extIP, MediaSRTP: 1, TLSURINoSIPS: true}))
	}
	s.dg = diago.NewDiago(ua, opts...)
	srv.OnUpdate(s.handleUpdate)
	return s, nil
}

// defaultCodecs is what ivrd offers and takes: PCMU, PCMA and telephone-event.
func defaultCodecs() []media.Codec {
	return []media.Codec{media.CodecAudioUlaw, media.CodecAudioAlaw, media.CodecTelephoneEvent8000}
}

// contactHeader is ivrd's Contact for a transport: sip:user@host:port, with ;transport= for
// TCP and TLS (RFC 5630: sip: with transport=tls rather than sips:).
func contactHeader(user, host string, port int, transport string) sip.ContactHeader {
	c := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: host, Port: port,
		UriParams: sip.NewParams(), Headers: sip.NewParams()}}
	if transport != "udp" {
		c.Address.UriParams.Add("transport", transport)
	}
	return c
}

// contactFor returns ivrd's Contact for calls over transport ("UDP", "TCP", "TLS").
func (s *Server) contactFor(transport string) sip.ContactHeader {
	if c, ok := s.contacts[transport]; ok {
		return c
	}
	return s.contacts["UDP"]
}

// Addr returns the bound SIP address (UDP and TCP), e.g. "127.0.0.1:5060".
func (s *Server) Addr() string {
	a := s.conn.LocalAddr().(*net.UDPAddr)
	return joinHostPort(a.IP.String(), a.Port)
}

// AddrTLS returns the bound SIP over TLS address, "" without TLS.
func (s *Server) AddrTLS() string {
	if s.ls.tls == nil {
		return ""
	}
	ip, port := hostPort(s.ls.tls.Addr())
	return joinHostPort(ip.String(), port)
}

// Serve takes calls until ctx ends. For each INVITE it sends 100 Trying and 180 Ringing, then
// calls onCall in its own goroutine with the leg ringing; the leg lives until it ends,
// whether or not onCall has returned. When ctx ends Serve hangs up the calls still up (for
// a few seconds at most), closes the socket and returns nil. It returns an error if the
// socket fails. Serve may be called once.
func (s *Server) Serve(ctx context.Context, onCall func(*Leg)) error {
	s.mu.Lock()
	if s.serving || s.closed {
		s.mu.Unlock()
		return errors.New("telephony: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()

	s.dg.HandleFunc(func(d *diago.DialogServerSession) { s.handle(d, onCall) })
	errc := make(chan error, 3)
	go func() { errc <- s.sip.ServeUDP(s.ls.udp) }()
	go func() { errc <- s.sip.ServeTCP(s.ls.tcp) }()
	if s.ls.tls != nil {
		go func() { errc <- s.sip.ServeTLS(s.ls.tls) }()
	}
	go s.awaitReady(ctx)
	go func() {
		select {
		case <-s.ready:
			s.startRecovered()
		case <-ctx.Done():
		}
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("telephony: serve: %w", err)
	}
	s.shutdown()
	return err
}

// Close releases the socket of a server whose Serve was never called (Serve cleans up itself).
func (s *Server) Close() error {
	s.mu.Lock()
	serving := s.serving
	s.closed = true
	s.mu.Unlock()
	if serving {
		return nil
	}
	s.ls.close()
	return s.ua.Close()
}

// awaitReady closes s.ready once sipgo has taken the socket into its connection pool: before
// that, a request sent from the socket's address would make sipgo bind a second socket to it.
func (s *Server) awaitReady(ctx context.Context) {
	tp := s.ua.TransportLayer()
	addr := s.conn.LocalAddr().String()
	for {
		if c, err := tp.GetConnection("udp", addr); err == nil && c != nil {
			close(s.ready)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
}

func (s *Server) shutdown() {
	s.mu.Lock()
	s.closed = true
	close(s.stop)
	legs := make([]*Leg, 0, len(s.legs))
	for _, l := range s.legs {
		legs = append(legs, l)
	}
	s.mu.Unlock()

	for _, l := range legs {
		go func() {
			if err := l.Hangup(); err != nil {
				l.log.Debug("hangup at shutdown", "err", err)
			}
		}()
	}
	ended := make(chan struct{})
	go func() {
		s.calls.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(shutdownGrace):
		s.log.Warn("telephony: calls still up at shutdown", "calls", len(legs))
	}
	s.ls.close()
	s.ua.Close()
	for _, l := range legs {
		l.finish() // releases media of any call the grace period cut short
	}
}

// handle runs one incoming call (admitted by the middleware); diago hangs up and forgets the
// dialog when it returns.
func (s *Server) handle(d *diago.DialogServerSession, onCall func(*Leg)) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = d.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		return
	}
	l := newLeg(newIncoming(s, d, s.adm.offer(d.InviteRequest)), s.log)
	s.legs[d.ID] = l
	s.calls.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.legs, d.ID)
		s.mu.Unlock()
		s.calls.Done()
	}()

	stop := context.AfterFunc(l.dlg.Context(), l.finish) // the caller's BYE or CANCEL
	defer stop()
	if err := d.Trying(); err != nil {
		l.log.Debug("100 Trying", "err", err)
	}
	if err := d.Ringing(); err != nil {
		l.log.Debug("180 Ringing", "err", err)
	}
	l.log.Debug("incoming call", "from", l.from, "to", l.to, "transport", l.inc.transport, "source", l.inc.source, "nat", l.inc.natSIP)
	go onCall(l)
	<-l.done
}

// middleware sees the requests diago handles before diago does: it admits new INVITEs, takes
// re-INVITEs of incoming calls (whose media ivrd negotiates), the answers that ACKs carry,
// and in-dialog INFO (DTMF, which diago refuses for server dialogs).
func (s *Server) middleware(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method != sip.INVITE && req.Method != sip.CANCEL && hasToTag(req) && s.answerRecovered(req, tx) {
			return
		}
		switch req.Method {
		case sip.INFO:
			s.handleInfo(req, tx)
			return
		case sip.INVITE:
			if !hasToTag(req) {
				s.admitInvite(req, tx, next)
				return
			}
			if l := s.incomingLeg(req); l != nil {
				l.inc.renegotiate(l, req, tx)
				return
			}
		case sip.ACK:
			if l := s.incomingLeg(req); l != nil {
				l.inc.onAck(l, req)
			}
		case sip.OPTIONS:
			// A proxy in front (Kamailio's dispatcher) probes with OPTIONS: a draining server
			// answers 503 like a new INVITE, so the proxy stops offering it calls.
			if !hasToTag(req) {
				if res := s.drainRefusal(req); res != nil {
					if err := tx.Respond(res); err != nil {
						s.log.Debug("refusing OPTIONS", "err", err)
					}
					return
				}
			}
		}
		next(req, tx)
	}
}

// admitInvite runs a new INVITE through the admission, then (admitted) through diago, which
// calls handle and returns when the call has ended.
func (s *Server) admitInvite(req *sip.Request, tx sip.ServerTransaction, next sipgo.RequestHandler) {
	if res := s.drainRefusal(req); res != nil {
		if err := tx.Respond(res); err != nil {
			s.log.Debug("refusing INVITE", "err", err)
		}
		return
	}
	res, drop := s.adm.admit(req, time.Now())
	if drop {
		return
	}
	if res != nil {
		if err := tx.Respond(res); err != nil {
			s.log.Debug("refusing INVITE", "err", err)
		}
		return
	}
	defer s.adm.done(req)
	next(req, tx)
}

// handleUpdate takes UPDATE (RFC 3311) in incoming calls: with or without an offer.
func (s *Server) handleUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if l := s.incomingLeg(req); l != nil {
		l.inc.renegotiate(l, req, tx)
		return
	}
	code := sip.StatusCallTransactionDoesNotExists
	if s.dialledLeg(req) != nil {
		// A dialled call's media is diago's, which has no UPDATE: a session refresh is fine,
		// a new offer is refused.
		code = sip.StatusOK
		if len(req.Body()) > 0 {
			code = sip.StatusNotAcceptableHere
		}
	}
	if err := tx.Respond(sip.NewResponseFromRequest(req, code, reasonPhrase(code), nil)); err != nil {
		s.log.Debug("UPDATE response", "err", err)
	}
}

func hasToTag(req *sip.Request) bool {
	to := req.To()
	if to == nil {
		return false
	}
	_, ok := to.Params.Get("tag")
	return ok
}

// incomingLeg returns the incoming call an in-dialog request belongs to, nil if none.
func (s *Server) incomingLeg(req *sip.Request) *Leg {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.legs[id]; l != nil && l.inc != nil {
		return l
	}
	return nil
}

// dialledLeg returns the dialled call an in-dialog request belongs to, nil if none.
func (s *Server) dialledLeg(req *sip.Request) *Leg {
	id, err := sip.DialogIDFromRequestUAC(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.legs[id]; l != nil && l.inc == nil {
		return l
	}
	return nil
}

func (s *Server) handleInfo(req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string) {
		if err := tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil)); err != nil {
			s.log.Debug("INFO response", "err", err)
		}
	}
	l := s.incomingLeg(req)
	if l == nil {
		l = s.dialledLeg(req)
	}
	if l == nil {
		respond(sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	key, err := parseInfoDTMF(ct, req.Body())
	switch {
	case errors.Is(err, errUnsupportedInfo):
		respond(sip.StatusUnsupportedMediaType, "Unsupported Media Type")
	case err != nil:
		respond(sip.StatusBadRequest, "Bad Request")
	default:
		respond(sip.StatusOK, "OK")
		l.digit(key)
	}
}
