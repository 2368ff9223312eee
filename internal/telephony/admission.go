package telephony

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// admission decides whether a new INVITE (one without a To tag) may become a call, before
// anything else sees it:
//
//   - 403 Forbidden: its source address is outside the allowed prefixes (when any are set);
//   - 503 Service Unavailable with Retry-After: its source sent INVITEs faster than the rate;
//   - 482 Loop Detected: it is a merged request (RFC 3261 §8.2.2.2): the same Call-ID, From
//     tag and CSeq as an INVITE ivrd is already handling, arriving by another path (another
//     Via branch);
//   - 420 Bad Extension with Unsupported: it Requires an extension (ivrd supports none, so
//     100rel gets this);
//   - 400 Bad Request: its body cannot be read; 488 Not Acceptable Here: its SDP (alone or the
//     application/sdp part of a multipart body) offers nothing ivrd can take (no G.711 audio,
//     SRTP outside TLS, ...).
//
// An admitted INVITE is held (with its offer) until done is called for it.
type admission struct {
	allow   []netip.Prefix
	limiter *rateLimiter
	log     *slog.Logger

	mu       sync.Mutex
	inflight map[mergeKey]*pendingInvite
}

// mergeKey identifies an INVITE across the paths it may take.
type mergeKey struct {
	callID, fromTag string
	cseq            uint32
}

type pendingInvite struct {
	branch string
	offer  *sessionDesc // nil: late offer
}

func newAdmission(allow []netip.Prefix, rate float64, log *slog.Logger) *admission {
	return &admission{allow: allow, limiter: newRateLimiter(rate, log), log: log, inflight: map[mergeKey]*pendingInvite{}}
}

func keyOf(req *sip.Request) (mergeKey, bool) {
	cid, from, cseq := req.CallID(), req.From(), req.CSeq()
	if cid == nil || from == nil || cseq == nil {
		return mergeKey{}, false
	}
	tag, _ := from.Params.Get("tag")
	return mergeKey{callID: cid.Value(), fromTag: tag, cseq: cseq.SeqNo}, true
}

func branchOf(req *sip.Request) string {
	if via := req.Via(); via != nil {
		b, _ := via.Params.Get("branch")
		return b
	}
	return ""
}

// admit checks a new INVITE. It returns the response that refuses it, or nil when it is
// admitted (then done must follow). A retransmission of an INVITE being handled (same
// branch) gets neither: drop is true, and the transaction layer has answered it already.
func (a *admission) admit(req *sip.Request, now time.Time) (res *sip.Response, drop bool) {
	refuse := func(code int, hdrs ...sip.Header) *sip.Response {
		r := sip.NewResponseFromRequest(req, code, reasonPhrase(code), nil)
		for _, h := range hdrs {
			r.AppendHeader(h)
		}
		return r
	}
	src, _ := netip.ParseAddrPort(req.Source())
	ip := src.Addr().Unmap()
	if len(a.allow) > 0 && !slices.ContainsFunc(a.allow, func(p netip.Prefix) bool { return p.Contains(ip) }) {
		a.log.Info("INVITE from a source not allowed (403)", "source", src, "call_id", callID(req))
		return refuse(sip.StatusForbidden), false
	}
	if ok, retry := a.limiter.allow(ip, now); !ok {
		return refuse(sip.StatusServiceUnavailable, sip.NewHeader(hdrRetryAfter, strconv.Itoa(retry))), false
	}
	key, ok := keyOf(req)
	if !ok {
		return refuse(sip.StatusBadRequest), false
	}
	branch := branchOf(req)
	a.mu.Lock()
	p := a.inflight[key]
	a.mu.Unlock()
	if p != nil {
		if p.branch == branch {
			return nil, true
		}
		a.log.Info("merged INVITE (482)", "call_id", key.callID, "source", src)
		return refuse(sip.StatusLoopDetected), false
	}
	if tags := unsupportedRequires(req); tags != "" {
		return refuse(sip.StatusBadExtension, sip.NewHeader(hdrUnsupported, tags)), false
	}
	offer, err := readSDP(req)
	switch {
	case errors.Is(err, errBadBody) || errors.Is(err, errSDPSyntax):
		a.log.Info("INVITE with an unreadable body (400)", "call_id", key.callID, "err", err)
		return refuse(sip.StatusBadRequest), false
	case err == nil && offer != nil:
		err = offer.acceptable(req.Transport() == "TLS")
	}
	if err != nil {
		a.log.Info("INVITE offer not acceptable (488)", "call_id", key.callID, "err", err)
		return refuse(sip.StatusNotAcceptableHere), false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight[key] != nil { // the same INVITE by another path, at the same moment
		return refuse(sip.StatusLoopDetected), false
	}
	a.inflight[key] = &pendingInvite{branch: branch, offer: offer}
	return nil, false
}

// readSDP returns the SDP a request carries (alone, or as the application/sdp part of a
// multipart body), parsed; nil when it carries none.
func readSDP(req *sip.Request) (*sessionDesc, error) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	body, err := sdpBody(ct, req.Body())
	if err != nil || body == nil {
		return nil, err
	}
	return parseSDP(body)
}

// offer returns the offer of the admitted INVITE req (nil for a late offer).
func (a *admission) offer(req *sip.Request) *sessionDesc {
	key, _ := keyOf(req)
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.inflight[key]; p != nil {
		return p.offer
	}
	return nil
}

// done forgets the admitted INVITE req (its call has ended).
func (a *admission) done(req *sip.Request) {
	key, _ := keyOf(req)
	a.mu.Lock()
	delete(a.inflight, key)
	a.mu.Unlock()
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}
