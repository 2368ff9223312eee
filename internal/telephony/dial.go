package telephony

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ivrd/ivrd/internal/calllog"
)

// DialOptions describes an outgoing call through a SIP trunk.
type DialOptions struct {
	// Trunk is the trunk's SIP address: "sip:127.0.0.1:5070", "127.0.0.1:5070" or
	// "sip:trunk.example.com;transport=tcp" (the transport the trunk is reached by). A user or
	// password part is ignored: Username and Password are the credentials.
	Trunk string
	// Username and Password answer the trunk's digest challenges (401/407, MD5 or SHA-256).
	// They are only ever given to the trunk's host, never to a host a redirect points to.
	Username, Password string
	Dest               string // number to call, e.g. "+6590000001": the Request-URI user, as given
	// CallerID is the From and P-Asserted-Identity user; empty means FromUser.
	CallerID string
	// FromUser is the identity of calls without CallerID; default the server's user agent name.
	FromUser    string
	RingTimeout time.Duration // how long to wait for an answer, redirects included; default 30 s
	// EarlyMedia, when set, is an answered leg that hears the far end's early media (a 183
	// Session Progress with SDP) from the moment it arrives until Dial returns.
	EarlyMedia *Leg
	// Session is the session the call belongs to: its log lines carry it from the first.
	// Default: the one ctx names (calllog.WithSession).
	Session string
}

// DialOutcome is how a Dial ended; the values are the API's dial_status strings.
type DialOutcome string

// The outcomes of Dial.
const (
	DialAnswered   DialOutcome = "answered"
	DialUnanswered DialOutcome = "unanswered" // no answer within the ring timeout (CANCEL sent)
	DialBusy       DialOutcome = "busy"       // 486 Busy Here or 600 Busy Everywhere
	DialFailed     DialOutcome = "failed"     // any other failure
)

const defaultRingTimeout = 30 * time.Second

// maxRedirects is how many 3xx responses one Dial follows.
const maxRedirects = 3

// headerPAI is the header that asserts the caller's identity to a trusted trunk (RFC 3325).
const headerPAI = "P-Asserted-Identity"

// trunkResponseTimeout is how long the trunk may stay completely silent (not even 100 Trying)
// before the call counts as failed: an unreachable trunk would otherwise ring out the whole
// ring timeout, or SIP's 32 s Timer B.
var trunkResponseTimeout = 5 * time.Second

// cancelGrace bounds how long Dial waits, after sending CANCEL, for the INVITE to end (200 to
// the CANCEL, then 487); the rest of the clean-up goes on in the background.
const cancelGrace = 3 * time.Second

var (
	errNotServing  = errors.New("telephony: server is not serving")
	errRingTimeout = errors.New("telephony: dial: ring timeout")
)

// Dial calls o.Dest through o.Trunk from the server's own SIP socket and waits until the call is
// answered, rejected, or rings out. It answers the trunk's 401/407 challenges with o.Username
// and o.Password, follows up to three 3xx redirects (to the best Contact), and sends
// o.EarlyMedia the far end's early media. The outcome:
//   - DialAnswered: l is the answered call (Answer is a no-op, Reject says ErrAnswered); its
//     From is o.CallerID and its To is o.Dest. Hang it up when done.
//   - DialBusy: the far end answered 486 or 600 (err is its *ResponseError).
//   - DialUnanswered: no answer within o.RingTimeout; Dial sent CANCEL. Also when ctx ends while
//     ringing (CANCEL too), then with err = ctx.Err().
//   - DialFailed: any other final response, no response from the trunk, too many redirects,
//     invalid options, or the server not serving; err says which (a *ResponseError, wrapped,
//     when the far end refused the call with a final response).
//
// err is nil for answered and unanswered calls (but see ctx). Dial needs Serve running.
func (s *Server) Dial(ctx context.Context, o DialOptions) (l *Leg, outcome DialOutcome, err error) {
	uri, err := dialURI(o.Trunk, o.Dest)
	if err != nil {
		return nil, DialFailed, err
	}
	if o.Session == "" {
		o.Session = calllog.Session(ctx)
	}
	if o.CallerID != "" && !validUser(o.CallerID) {
		return nil, DialFailed, fmt.Errorf("telephony: dial: invalid caller id %q", o.CallerID)
	}
	if o.FromUser != "" && !validUser(o.FromUser) {
		return nil, DialFailed, fmt.Errorf("telephony: dial: invalid from user %q", o.FromUser)
	}
	ring := o.RingTimeout
	if ring <= 0 {
		ring = defaultRingTimeout
	}
	if err := s.awaitServing(ctx); err != nil {
		if errors.Is(err, errNotServing) {
			return nil, DialFailed, err
		}
		return nil, DialUnanswered, err
	}
	select {
	case <-s.stop:
		return nil, DialFailed, errNotServing
	default:
	}

	ringEnd := time.Now().Add(ring)
	log := s.log.With("dest", o.Dest, "trunk", o.Trunk)
	if o.Session != "" {
		log = log.With(calllog.Key, o.Session)
	}
	trunkHost := uri.Host
	for hop := 0; ; hop++ {
		p := attemptParams{uri: uri, o: o, identity: s.identity(o, trunkHost), credentials: strings.EqualFold(uri.Host, trunkHost)}
		l, outcome, next, err := s.attempt(ctx, p, ringEnd, log)
		switch {
		case next == nil:
			return l, outcome, err
		case hop == maxRedirects:
			return nil, DialFailed, fmt.Errorf("telephony: dial: more than %d redirects", maxRedirects)
		case !time.Now().Before(ringEnd):
			return nil, DialUnanswered, nil
		}
		log.Info("dial: redirected", "to", next.String())
		uri = *next
	}
}

// identity is the From and P-Asserted-Identity of a call: o.CallerID (else o.FromUser, else
// the user agent name) at the trunk's host.
func (s *Server) identity(o DialOptions, host string) sip.Uri {
	user := o.CallerID
	if user == "" {
		user = o.FromUser
	}
	if user == "" {
		user = s.ua.Name()
	}
	return sip.Uri{Scheme: "sip", User: user, Host: host}
}

// identityHeaders are the From and P-Asserted-Identity headers for id.
func identityHeaders(id sip.Uri) []sip.Header {
	return []sip.Header{
		&sip.FromHeader{Address: id, Params: sip.NewParams()},
		sip.NewHeader(headerPAI, "<"+id.String()+">"),
	}
}

// awaitServing waits (a second at most) until Serve has its socket going. It returns
// errNotServing if that does not happen, ctx.Err() if ctx ends first.
func (s *Server) awaitServing(ctx context.Context) error {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-s.ready:
		return nil
	case <-s.stop:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return errNotServing
}

// dialURI builds the Request-URI: dest as the user part at the trunk's host and port, with the
// trunk's parameters (transport).
func dialURI(trunk, dest string) (sip.Uri, error) {
	var uri sip.Uri
	if !validUser(dest) {
		return uri, fmt.Errorf("telephony: dial: invalid destination %q", dest)
	}
	t := strings.TrimSpace(trunk)
	if t == "" {
		return uri, errors.New("telephony: dial: no trunk")
	}
	lower := strings.ToLower(t)
	if !strings.HasPrefix(lower, "sip:") && !strings.HasPrefix(lower, "sips:") {
		t = "sip:" + t
	}
	if err := sip.ParseUri(t, &uri); err != nil || uri.Host == "" {
		return sip.Uri{}, fmt.Errorf("telephony: dial: invalid trunk %q", trunk)
	}
	uri.User = dest
	uri.Password = ""
	return uri, nil
}

// validUser reports whether s can be a SIP user part verbatim: digits, letters, and the
// unreserved marks RFC 3261 allows unescaped (a leading '+' included).
func validUser(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			strings.ContainsRune("+-_.!~*'()", c)
		if !ok {
			return false
		}
	}
	return true
}
