package telephony

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo/sip"
)

// SIP header names and values ivrd writes or reads.
const (
	hdrAllow       = "Allow"
	hdrSupported   = "Supported"
	hdrRequire     = "Require"
	hdrUnsupported = "Unsupported"
	hdrRetryAfter  = "Retry-After"
	hdrContentType = "Content-Type"
	hdrRecordRoute = "Record-Route"

	// allowedMethods is what ivrd takes inside and outside calls.
	allowedMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
	// supportedOptions is the option tags ivrd supports: none (RFC 3261 §20.37: an empty
	// Supported says so). 100rel in particular is not: a Require of it gets 420.
	supportedOptions = ""
)

var errLateAnswer = errors.New("telephony: the ACK carried no usable answer to ivrd's offer")

// incoming is an incoming call's SIP side: the dialog, where the caller is, and how to reach
// it. It is the dialog of the call's Leg.
type incoming struct {
	srv       *Server
	d         *diago.DialogServerSession
	offer     *sessionDesc // nil: the INVITE had no SDP (late offer)
	secure    bool         // arrived over TLS: SDES-SRTP may be used
	transport string       // the INVITE's transport: "UDP", "TCP" or "TLS"
	reliable  bool         // TCP or TLS
	source    netip.AddrPort
	natSIP    bool // the caller's Via or Contact shows it is behind NAT
	routed    bool // the INVITE had Record-Route: in-dialog requests follow the route set
	contact   sip.ContactHeader

	mu     sync.Mutex
	cm     *callMedia
	target sip.Uri // the caller's Contact: where in-dialog requests go; re-INVITE and UPDATE refresh it
}

// newIncoming describes the caller of d, whose INVITE was checked by the admission (offer
// is its SDP, nil for a late offer).
func newIncoming(s *Server, d *diago.DialogServerSession, offer *sessionDesc) *incoming {
	req := d.InviteRequest
	in := &incoming{srv: s, d: d, offer: offer, transport: strings.ToUpper(req.Transport())}
	in.secure = in.transport == "TLS"
	in.reliable = in.transport == "TCP" || in.transport == "TLS"
	in.source, _ = netip.ParseAddrPort(req.Source())
	in.source = netip.AddrPortFrom(in.source.Addr().Unmap(), in.source.Port())
	in.routed = len(req.GetHeaders(hdrRecordRoute)) > 0
	if c := req.Contact(); c != nil {
		in.target = *c.Address.Clone()
	}
	in.natSIP = behindNAT(req, in.source, in.reliable)
	in.contact = s.incomingContact(in.transport, req.Source())
	return in
}

// behindNAT reports whether a request's Via or Contact shows its sender behind NAT: the Via
// sent-by address is not where the request came from (its port too over UDP: over TCP and
// TLS the source port is the connection's own), or the Contact names a private address that
// is not the source either.
func behindNAT(req *sip.Request, src netip.AddrPort, reliable bool) bool {
	if !src.IsValid() {
		return false
	}
	if via := req.Via(); via != nil {
		if ip, err := netip.ParseAddr(strings.Trim(via.Host, "[]")); err == nil {
			port := via.Port
			if port == 0 {
				port = 5060
			}
			if ip.Unmap() != src.Addr() || (!reliable && port != int(src.Port())) {
				return true
			}
		}
	}
	if c := req.Contact(); c != nil {
		if ip, err := netip.ParseAddr(strings.Trim(c.Address.Host, "[]")); err == nil && ip.Unmap() != src.Addr() && ip.IsPrivate() {
			return true
		}
	}
	return false
}

// unescapeUser decodes the %XX escapes of a SIP URI user part (RFC 3261 §19.1.2: a phone
// number may arrive as %2B6561234567); a malformed one is returned as it is.
func unescapeUser(u string) string {
	if !strings.Contains(u, "%") {
		return u
	}
	if d, err := url.PathUnescape(u); err == nil {
		return d
	}
	return u
}

// Context ends when the dialog ends.
func (in *incoming) Context() context.Context { return in.d.Context() }

// expectation is where the call's media should come from, before the SDP says.
func (in *incoming) expectation() expectation {
	return expectation{sigIP: in.source.Addr(), nat: in.natSIP}
}

// media returns the call's media, nil before the answer started.
func (in *incoming) media() *callMedia {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cm
}

// answer negotiates the call's media and sends 200 OK: ivrd's answer to the INVITE's offer,
// or (late offer) ivrd's offer, whose answer the ACK brings. It returns once the ACK has
// come. On an error the media (if any) is returned too, for the caller to close; whether a
// 200 went out says the dialog's state.
func (in *incoming) answer(log *slog.Logger) (*callMedia, error) {
	cm, err := newCallMedia(in.srv.media, in.secure, log)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	in.cm = cm
	in.mu.Unlock()
	var body []byte
	if in.offer != nil {
		if body, err = cm.answer(in.offer, in.expectation()); err != nil {
			return cm, err
		}
	} else {
		body = cm.offer()
	}
	res := sip.NewResponseFromRequest(in.d.InviteRequest, sip.StatusOK, "OK", body)
	in.decorate(res, true)
	if err := in.d.WriteResponse(res); err != nil { // waits for the ACK
		return cm, fmt.Errorf("telephony: 200 OK: %w", err)
	}
	if cm.remoteDesc() == nil {
		return cm, errLateAnswer
	}
	return cm, nil
}

// decorate adds what every 2xx of ivrd carries: its Contact for the call's transport, Allow
// and Supported, and the SDP's Content-Type when there is a body.
func (in *incoming) decorate(res *sip.Response, sdp bool) {
	c := in.contact
	res.AppendHeader(c.Clone())
	res.AppendHeader(sip.NewHeader(hdrAllow, allowedMethods))
	res.AppendHeader(sip.NewHeader(hdrSupported, supportedOptions))
	if sdp {
		res.AppendHeader(sip.NewHeader(hdrContentType, ctSDP))
	}
}

// onAck takes the answer an ACK carries to an offer of ivrd's (a late offer, or a re-INVITE
// that had none).
func (in *incoming) onAck(l *Leg, req *sip.Request) {
	cm := in.media()
	if cm == nil || !cm.awaitingAnswer() {
		return
	}
	sd, err := readSDP(req)
	if err == nil && sd == nil {
		err = errLateAnswer
	}
	if err == nil {
		err = sd.acceptable(in.secure)
	}
	if err == nil {
		err = cm.applyAnswer(sd, in.expectation())
	} else {
		cm.dropOffer()
	}
	if err != nil {
		// A first answer that is missing fails the answer (which then hangs up); a re-INVITE's
		// leaves the media as it was.
		l.log.Warn("no usable answer to our offer", "err", err)
		return
	}
	l.mediaRenegotiated(cm)
}

// renegotiate answers a re-INVITE or an UPDATE inside the call: with an offer, the media is
// renegotiated (a hold, a resume, a new address) and the 200 carries ivrd's answer; a
// re-INVITE without one gets ivrd's offer (the ACK answers it); an UPDATE without one just
// refreshes the session.
func (in *incoming) renegotiate(l *Leg, req *sip.Request, tx sip.ServerTransaction) {
	respond := func(res *sip.Response) {
		if err := tx.Respond(res); err != nil {
			l.log.Debug("response to "+req.Method.String(), "err", err)
		}
	}
	fail := func(code int, extra ...sip.Header) {
		res := sip.NewResponseFromRequest(req, code, reasonPhrase(code), nil)
		for _, h := range extra {
			res.AppendHeader(h)
		}
		respond(res)
	}
	cm := in.media()
	if in.d.LoadState() != sip.DialogStateConfirmed || cm == nil || cm.remoteDesc() == nil {
		// RFC 3311 §5.2 (and RFC 3261 §14.2 for a re-INVITE): the initial offer/answer is
		// not complete yet.
		fail(sip.StatusInternalServerError, sip.NewHeader(hdrRetryAfter, strconv.Itoa(rand.IntN(10)+1)))
		return
	}
	if err := in.d.ReadRequest(req, tx); err != nil {
		fail(sip.StatusInternalServerError, sip.NewHeader(hdrRetryAfter, strconv.Itoa(rand.IntN(10)+1)))
		return
	}
	if reqs := unsupportedRequires(req); reqs != "" {
		fail(sip.StatusBadExtension, sip.NewHeader(hdrUnsupported, reqs))
		return
	}
	sd, err := readSDP(req)
	if err != nil {
		fail(sip.StatusNotAcceptableHere)
		return
	}
	if c := req.Contact(); c != nil {
		in.mu.Lock()
		in.target = *c.Address.Clone()
		in.mu.Unlock()
	}
	var body []byte
	switch {
	case sd == nil && req.Method == sip.UPDATE:
	case sd == nil:
		if body, err = cm.reofferLocal(); err != nil {
			fail(sip.StatusRequestPending)
			return
		}
	default:
		if err := sd.acceptable(in.secure); err != nil {
			l.log.Info("in-call offer refused", "method", req.Method.String(), "err", err)
			fail(sip.StatusNotAcceptableHere)
			return
		}
		body, err = cm.reoffer(sd, in.expectation())
		if errors.Is(err, errAnswerPending) {
			fail(sip.StatusRequestPending)
			return
		}
		if err != nil {
			l.log.Info("in-call offer refused", "method", req.Method.String(), "err", err)
			fail(sip.StatusNotAcceptableHere)
			return
		}
		l.mediaRenegotiated(cm) // a hold stops the sending before it is answered
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", body)
	in.decorate(res, body != nil)
	respond(res)
}

// Bye sends BYE in the dialog. It goes where the caller's requests came from (the same
// connection over TCP and TLS, received/rport over UDP) when the caller is behind NAT or on a
// connection-oriented transport and no proxy recorded a route: its Contact may not be
// reachable from here. If that connection is gone, the Contact is tried.
func (in *incoming) Bye(ctx context.Context) error {
	bye := in.newBye()
	toSource := (in.reliable || in.natSIP) && !in.routed && in.source.IsValid()
	if toSource {
		bye.SetDestination(in.source.String())
	}
	err := in.d.WriteBye(ctx, bye)
	if err != nil && toSource && in.reliable && ctx.Err() == nil && in.d.LoadState() != sip.DialogStateEnded {
		err = in.d.WriteBye(ctx, in.newBye())
	}
	return err
}

func (in *incoming) newBye() *sip.Request {
	in.mu.Lock()
	target := *in.target.Clone()
	in.mu.Unlock()
	bye := sip.NewRequest(sip.BYE, target)
	bye.SetTransport(in.transport)
	c := in.contact
	bye.AppendHeader(c.Clone())
	return bye
}

// unsupportedRequires returns the option tags of a request's Require headers, comma
// separated: ivrd supports none.
func unsupportedRequires(req *sip.Request) string {
	var tags []string
	for _, h := range req.GetHeaders(hdrRequire) {
		for t := range strings.SplitSeq(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return strings.Join(tags, ", ")
}
