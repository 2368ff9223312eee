// Package telephony is ivrd's SIP/RTP layer: it accepts incoming calls over SIP (UDP) and
// carries their audio as G.711 RTP, on top of github.com/emiago/diago and sipgo.
//
// Each call is a Leg, incoming or placed by Server.Dial. Its media reader decodes what the
// caller sends into 8 kHz PCM for the leg's tap and turns DTMF (RFC 4733 telephone-events, or
// SIP INFO) into keys; Play sends PCM to the caller in real time. Bridge connects two legs and
// a Room up to eight; their mixer then sends each leg what it hears.
package telephony

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Config configures a Server.
type Config struct {
	Listen    string       // UDP address for SIP, e.g. "127.0.0.1:5060"; port 0 picks a free one
	UserAgent string       // User-Agent and Contact user; default "ivrd"
	Log       *slog.Logger // default slog.Default()
}

// shutdownGrace bounds how long Serve spends hanging up calls when its context ends.
const shutdownGrace = 6 * time.Second

// Server accepts incoming SIP calls and places outgoing ones (Dial) from the same socket.
type Server struct {
	log   *slog.Logger
	conn  net.PacketConn
	tcpLn net.Listener
	ua    *sipgo.UserAgent
	sip   *sipgo.Server
	dg    *diago.Diago

	mu      sync.Mutex
	serving bool
	closed  bool
	legs    map[string]*Leg // by SIP dialog ID
	calls   sync.WaitGroup  // INVITE handlers and answered outgoing calls
	stop    chan struct{}   // closed at shutdown: dials in progress give up
	ready   chan struct{}   // closed once sipgo serves the socket (Dial needs it)
}

// NewServer binds the SIP socket (so Addr is known at once) and prepares the SIP stack. Call
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
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("telephony: listen address: %w", err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	conn, tcpLn, err := listenUDPTCP(cfg.Listen, host)
	if err != nil {
		return nil, fmt.Errorf("telephony: %w", err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port

	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.UserAgent))
	if err != nil {
		conn.Close()
		tcpLn.Close()
		return nil, fmt.Errorf("telephony: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		conn.Close()
		tcpLn.Close()
		ua.Close()
		return nil, fmt.Errorf("telephony: %w", err)
	}
	s := &Server{log: log, conn: conn, tcpLn: tcpLn, ua: ua, sip: srv, legs: map[string]*Leg{}, stop: make(chan struct{}), ready: make(chan struct{})}
	// We serve the socket ourselves (diago's Serve would bind its own), so the transport is
	// declared with the port already bound: diago builds Contact and the client from it.
	s.dg = diago.NewDiago(ua,
		diago.WithLogger(log),
		diago.WithServer(srv),
		diago.WithTransport(diago.Transport{Transport: "udp", BindHost: host, BindPort: port}),
		diago.WithTransport(diago.Transport{Transport: "tcp", BindHost: host, BindPort: port}),
		diago.WithServerRequestMiddleware(s.middleware),
	)
	return s, nil
}

// listenUDPTCP binds UDP on addr and TCP on the same port: outbound calls and registrations
// to a transport=tcp trunk, and the trunk's requests back to our Contact. With port 0 it tries
// a few free UDP ports until TCP is free on the same one.
func listenUDPTCP(addr, host string) (net.PacketConn, net.Listener, error) {
	for attempt := 1; ; attempt++ {
		conn, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		port := conn.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return conn, ln, nil
		}
		conn.Close()
		if _, p, _ := net.SplitHostPort(addr); p != "0" || attempt == 10 {
			return nil, nil, err
		}
	}
}

// Addr returns the bound SIP address, e.g. "127.0.0.1:5060".
func (s *Server) Addr() string {
	a := s.conn.LocalAddr().(*net.UDPAddr)
	return net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
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
	errc := make(chan error, 1)
	go func() { errc <- s.sip.ServeUDP(s.conn) }()
	go func() { _ = s.sip.ServeTCP(s.tcpLn) }()
	go s.awaitReady(ctx)

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
	s.tcpLn.Close()
	err := s.conn.Close()
	s.ua.Close()
	return err
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
	s.conn.Close()
	s.tcpLn.Close()
	s.ua.Close()
	for _, l := range legs {
		l.finish() // releases media of any call the grace period cut short
	}
}

// handle runs one incoming call; diago hangs up and forgets the dialog when it returns.
func (s *Server) handle(d *diago.DialogServerSession, onCall func(*Leg)) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = d.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		return
	}
	l := newLeg(d, s.log)
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
	l.log.Info("incoming call", "from", l.from, "to", l.to)
	go onCall(l)
	<-l.done
}

// middleware takes in-dialog INFO (DTMF) away from diago, which refuses it for server
// dialogs.
func (s *Server) middleware(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method == sip.INFO {
			s.handleInfo(req, tx)
			return
		}
		next(req, tx)
	}
}

func (s *Server) handleInfo(req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string) {
		if err := tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil)); err != nil {
			s.log.Debug("INFO response", "err", err)
		}
	}
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		respond(sip.StatusBadRequest, "Bad Request")
		return
	}
	s.mu.Lock()
	l := s.legs[id]
	if l == nil {
		// An outgoing call's dialog ID has the tags the other way round.
		if idc, err := sip.DialogIDFromRequestUAC(req); err == nil {
			l = s.legs[idc]
		}
	}
	s.mu.Unlock()
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
