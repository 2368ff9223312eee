package telephony

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// DialOptions describes an outgoing call through a SIP trunk.
type DialOptions struct {
	Trunk       string        // the trunk's SIP address: "sip:127.0.0.1:5070" or "127.0.0.1:5070"
	Dest        string        // number to call, e.g. "+6590000001": the Request-URI user, as given
	CallerID    string        // From user; empty means the server's user agent name
	RingTimeout time.Duration // how long to wait for an answer; default 30 s
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

// trunkResponseTimeout is how long the trunk may stay completely silent (not even 100 Trying)
// before the call counts as failed: an unreachable trunk would otherwise ring out the whole
// ring timeout, or SIP's 32 s Timer B.
var trunkResponseTimeout = 5 * time.Second

// cancelGrace bounds how long Dial waits, after sending CANCEL, for the INVITE to end (200 to
// the CANCEL, then 487); the rest of the clean-up goes on in the background.
const cancelGrace = 3 * time.Second

var errNotServing = errors.New("telephony: server is not serving")

// Dial calls o.Dest through o.Trunk from the server's own SIP socket and waits until the call is
// answered, rejected, or rings out. The outcome:
//   - DialAnswered: l is the answered call (Answer is a no-op, Reject says ErrAnswered); its
//     From is o.CallerID and its To is o.Dest. Hang it up when done.
//   - DialBusy: the far end answered 486 or 600.
//   - DialUnanswered: no answer within o.RingTimeout; Dial sent CANCEL. Also when ctx ends while
//     ringing (CANCEL too), then with err = ctx.Err().
//   - DialFailed: any other final response, no response from the trunk, invalid options, or
//     the server not serving; err says which.
//
// err is nil for answered, busy and unanswered calls (but see ctx). Dial needs Serve running.
func (s *Server) Dial(ctx context.Context, o DialOptions) (l *Leg, outcome DialOutcome, err error) {
	uri, err := dialURI(o.Trunk, o.Dest)
	if err != nil {
		return nil, DialFailed, err
	}
	if o.CallerID != "" && !validUser(o.CallerID) {
		return nil, DialFailed, fmt.Errorf("telephony: dial: invalid caller id %q", o.CallerID)
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

	d, err := s.dg.NewDialog(uri, diago.NewDialogOptions{})
	if err != nil {
		return nil, DialFailed, fmt.Errorf("telephony: dial: %w", err)
	}
	var responded atomic.Bool
	var legp atomic.Pointer[Leg]
	opts := diago.InviteClientOptions{
		OnResponse: func(*sip.Response) error {
			responded.Store(true)
			return nil
		},
		OnMediaUpdate: func(med *diago.DialogMedia) {
			if l := legp.Load(); l != nil {
				l.mediaUpdated(med)
			}
		},
	}
	if o.CallerID != "" {
		host, _, _ := net.SplitHostPort(s.Addr())
		opts.Headers = append(opts.Headers, &sip.FromHeader{
			Address: sip.Uri{Scheme: "sip", User: o.CallerID, Host: host},
			Params:  sip.NewParams(),
		})
	}
	log := s.log.With("dest", o.Dest, "trunk", o.Trunk)

	// The INVITE runs in its own goroutine so that Dial can give up on it; whichever of the two
	// loses the race (result delivered vs abandoned) cleans up.
	const pending, delivered, abandoned = 0, 1, 2
	var state atomic.Int32
	type result struct {
		med *diago.DialogMedia
		err error
	}
	resc := make(chan result, 1)
	ictx, cancelInvite := context.WithCancel(context.Background())
	defer cancelInvite()
	go func() {
		med, err := d.Invite(ictx, opts)
		if !state.CompareAndSwap(pending, delivered) {
			abandonInvite(d, med, err)
			return
		}
		resc <- result{med, err}
	}()

	ringT := time.NewTimer(ring)
	defer ringT.Stop()
	silentT := time.NewTimer(min(trunkResponseTimeout, ring))
	defer silentT.Stop()

	var why error // set when we give up; the outcome is then decided
	for why == nil {
		select {
		case r := <-resc:
			return s.dialDone(d, r.med, r.err, o, &legp, log)
		case <-silentT.C:
			if !responded.Load() {
				outcome, why = DialFailed, fmt.Errorf("telephony: dial: no response from trunk %s", o.Trunk)
			}
		case <-ringT.C:
			select {
			case r := <-resc: // an answer just in time wins
				return s.dialDone(d, r.med, r.err, o, &legp, log)
			default:
			}
			outcome, why = DialUnanswered, errRingTimeout
		case <-ctx.Done():
			outcome, why = DialUnanswered, ctx.Err()
		case <-s.stop:
			outcome, why = DialFailed, errNotServing
		}
	}
	log.Debug("dial: giving up", "reason", why)
	cancelInvite() // sipgo sends CANCEL once a provisional response has come
	grace := time.Duration(0)
	if responded.Load() {
		grace = cancelGrace // CANCEL, 200, 487: let the far end stop ringing first
	}
	graceT := time.NewTimer(grace)
	defer graceT.Stop()
	select {
	case r := <-resc:
		go abandonInvite(d, r.med, r.err)
	case <-graceT.C:
		if !state.CompareAndSwap(pending, abandoned) {
			r := <-resc // delivered just now
			go abandonInvite(d, r.med, r.err)
		} else {
			log.Debug("dial: INVITE still winding down")
		}
	}
	if why == errRingTimeout {
		why = nil
	}
	return nil, outcome, why
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

var errRingTimeout = errors.New("telephony: dial: ring timeout")

// dialDone turns the INVITE's result into Dial's.
func (s *Server) dialDone(d *diago.DialogClientSession, med *diago.DialogMedia, err error, o DialOptions, legp *atomic.Pointer[Leg], log *slog.Logger) (*Leg, DialOutcome, error) {
	if err != nil {
		_ = d.Close()
		var pres *sipgo.ErrDialogResponse
		var vres sipgo.ErrDialogResponse
		code := 0
		switch {
		case errors.As(err, &pres):
			code = pres.Res.StatusCode
		case errors.As(err, &vres):
			code = vres.Res.StatusCode
		}
		log.Debug("dial: not answered", "status", code, "err", err)
		switch code {
		case sip.StatusBusyHere, sip.StatusGlobalBusyEverywhere:
			return nil, DialBusy, nil
		case 0:
			return nil, DialFailed, fmt.Errorf("telephony: dial: %w", err)
		}
		return nil, DialFailed, fmt.Errorf("telephony: dial: %d %s", code, reasonPhrase(code))
	}

	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if err := d.Ack(ctx); err != nil {
		abandonAnswered(d, med)
		return nil, DialFailed, fmt.Errorf("telephony: dial: ack: %w", err)
	}
	l := newOutboundLeg(d, med, o.CallerID, o.Dest, s.log)
	legp.Store(l)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		go func() { _ = l.Hangup(); _ = d.Close() }()
		return nil, DialFailed, errNotServing
	}
	s.legs[d.ID] = l
	s.calls.Add(1)
	s.mu.Unlock()
	context.AfterFunc(l.dlg.Context(), l.finish) // the far end's BYE
	go func() {
		<-l.done
		s.mu.Lock()
		delete(s.legs, d.ID)
		s.mu.Unlock()
		_ = d.Close()
		s.calls.Done()
	}()
	l.log.Info("outgoing call answered", "from", l.from, "to", l.to)
	return l, DialAnswered, nil
}

// newOutboundLeg wraps an answered and ACKed outgoing dialog.
func newOutboundLeg(d *diago.DialogClientSession, med *diago.DialogMedia, from, to string, log *slog.Logger) *Leg {
	l := &Leg{
		dlg:     d,
		id:      d.InviteRequest.CallID().Value(),
		from:    from,
		to:      to,
		done:    make(chan struct{}),
		playSem: make(chan struct{}, 1),
		pacer:   nextPacer(),
		digits:  make(chan rune, 32),
	}
	l.log = log.With("call_id", l.id, "dir", "out")
	l.dtmfPT.Store(-1)
	l.mu.Lock()
	l.startMediaLocked(med)
	l.mu.Unlock()
	return l
}

// abandonInvite cleans up after an INVITE whose Dial gave up: a call answered all the same is
// ACKed and hung up at once.
func abandonInvite(d *diago.DialogClientSession, med *diago.DialogMedia, err error) {
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		defer cancel()
		if d.Ack(ctx) == nil {
			abandonAnswered(d, med)
			return
		}
	} else if res := d.InviteResponse; res != nil && res.IsSuccess() {
		// 200 OK crossed our CANCEL: sipgo reports the cancel, the far end thinks it answered.
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		defer cancel()
		if d.DialogClientSession.Ack(ctx) == nil {
			_ = d.DialogClientSession.Bye(ctx)
		}
	}
	if med != nil {
		_ = med.Close()
	}
	_ = d.Close()
}

// abandonAnswered hangs up an ACKed call nobody wants any more.
func abandonAnswered(d *diago.DialogClientSession, med *diago.DialogMedia) {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	_ = d.Bye(ctx)
	if med != nil {
		_ = med.Close()
	}
	_ = d.Close()
}

// dialURI builds the Request-URI: dest as the user part at the trunk's host and port.
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
