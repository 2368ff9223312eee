package telephony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// attemptParams is one INVITE of a Dial: the first, or one after a redirect.
type attemptParams struct {
	uri         sip.Uri
	o           DialOptions
	identity    sip.Uri // From and P-Asserted-Identity
	credentials bool    // answer challenges with o's credentials (the trunk's host only)
}

// invite runs one INVITE transaction in its own goroutine so that Dial can give up on it;
// whichever of the two loses the race (final result delivered vs abandoned) cleans up.
type invite struct {
	d         *diago.DialogClientSession
	log       *slog.Logger
	responded atomic.Bool      // any response came
	events    chan inviteEvent // early media first (if any), then the final result; never blocks
	state     atomic.Int32     // pending, delivered or abandoned
	cancel    context.CancelFunc
}

// The states of an invite.
const (
	invitePending int32 = iota
	inviteDelivered
	inviteAbandoned
)

// inviteEvent is early media (early set, med running) or the INVITE's final result.
type inviteEvent struct {
	early bool
	med   *diago.DialogMedia // on a final error, the early media (if any) to close
	err   error
}

func (s *Server) startInvite(p attemptParams, legp *atomic.Pointer[Leg], log *slog.Logger) (*invite, error) {
	headers := identityHeaders(p.identity)
	cctx, cancel := context.WithTimeout(context.Background(), trunkResponseTimeout)
	contact, err := s.tlsContact(cctx, p.uri, s.name)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("telephony: dial: %w", err)
	}
	if contact != nil {
		headers = append(headers, contact)
	}
	d, err := s.dg.NewDialog(p.uri, diago.NewDialogOptions{})
	if err != nil {
		return nil, fmt.Errorf("telephony: dial: %w", err)
	}
	inv := &invite{d: d, log: log, events: make(chan inviteEvent, 2)}
	opts := diago.InviteClientOptions{
		OnResponse: func(*sip.Response) error {
			inv.responded.Store(true)
			return nil
		},
		OnMediaUpdate: func(med *diago.DialogMedia) {
			if l := legp.Load(); l != nil {
				l.mediaUpdated(med)
			}
		},
		Headers:          headers,
		EarlyMediaDetect: p.o.EarlyMedia != nil,
	}
	if p.credentials {
		opts.Username, opts.Password = p.o.Username, p.o.Password
	}
	ctx, cancel := context.WithCancel(context.Background())
	inv.cancel = cancel
	go inv.run(ctx, opts)
	return inv, nil
}

func (inv *invite) run(ctx context.Context, opts diago.InviteClientOptions) {
	med, err := inv.d.Invite(ctx, opts)
	if errors.Is(err, diago.ErrClientEarlyMedia) {
		earlySDP := inv.d.InviteResponse.Body()
		inv.events <- inviteEvent{early: true, med: med}
		// The transaction goes on: wait for its final response. diago's WaitAnswer would apply
		// the 200's SDP to the running early media session in place, racing with its RTCP
		// goroutines and our sending; the early media session is kept as it is unless the
		// 200 brings a different SDP, which then replaces it the way a re-INVITE does.
		err = inv.d.DialogClientSession.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: opts.OnResponse, Username: opts.Username, Password: opts.Password})
		if body := inv.d.InviteResponse.Body(); err == nil && len(body) > 0 && !bytes.Equal(body, earlySDP) {
			if err = replaceRemoteSDP(med, body); err != nil {
				actx, cancel := context.WithTimeout(context.Background(), byeTimeout)
				if inv.d.Ack(actx) == nil {
					_ = inv.d.Bye(actx)
				}
				cancel()
				err = fmt.Errorf("telephony: dial: the answer's SDP: %w", err)
			} else {
				inv.log.Debug("dial: the answer's SDP differs from the early media's: media updated")
			}
		}
	}
	if !inv.state.CompareAndSwap(invitePending, inviteDelivered) {
		abandonInvite(inv.d, med, err)
		return
	}
	inv.events <- inviteEvent{med: med, err: err}
}

// replaceRemoteSDP makes med's media follow a new remote SDP without changing the running
// session: it forks the media session with the new SDP and a new RTP session on the same
// sockets, and moves med's packet reader and writer over to it (diago's re-INVITE procedure).
func replaceRemoteSDP(med *diago.DialogMedia, sdp []byte) error {
	old := med.RTPSession()
	if old == nil {
		return errors.New("no RTP session")
	}
	msess := med.MediaSession().Fork()
	if err := msess.RemoteSDP(sdp, true); err != nil {
		return err
	}
	if err := old.MonitorClose(); err != nil { // its RTCP goroutines have exited
		return err
	}
	rtpSess := old.Fork(msess)
	if err := rtpSess.MonitorBackground(); err != nil {
		return err
	}
	med.OnClose(rtpSess.MonitorClose)
	med.RTPPacketReader.UpdateRTPSession(rtpSess)
	med.RTPPacketWriter.UpdateRTPSession(rtpSess)
	med.InitMediaSession(msess, med.RTPPacketReader, med.RTPPacketWriter)
	return nil
}

// attempt places one INVITE and follows it until it is answered, fails, is redirected (next
// is then the target), or Dial gives up on it (ring timeout, ctx, shutdown, silent trunk).
func (s *Server) attempt(ctx context.Context, p attemptParams, ringEnd time.Time, log *slog.Logger) (l *Leg, outcome DialOutcome, next *sip.Uri, err error) {
	var legp atomic.Pointer[Leg]
	inv, err := s.startInvite(p, &legp, log)
	if err != nil {
		return nil, DialFailed, nil, err
	}
	defer inv.cancel()

	// Early media: a leg on the early dialog, bridged to p.o.EarlyMedia until we return.
	var early *Leg
	unbridge := func() {}
	defer func() { unbridge() }()
	endEarly := func() {
		unbridge()
		if early != nil {
			early.finish()
		}
	}

	ringT := time.NewTimer(time.Until(ringEnd))
	defer ringT.Stop()
	silentT := time.NewTimer(trunkResponseTimeout)
	defer silentT.Stop()
	var why error // set when we give up; the outcome is then decided
	for why == nil {
		select {
		case ev := <-inv.events:
			if ev.early {
				early = newOutboundLeg(inv.d, ev.med, p.o.CallerID, p.o.Dest, s.log)
				early.tag.Set(p.o.Session)
				legp.Store(early)
				unbridge = Bridge(p.o.EarlyMedia, early)
				early.log.Info("early media from the far end")
				continue
			}
			if ev.err != nil {
				endEarly()
			}
			return s.dialDone(inv.d, ev, early, p.o, log)
		case <-silentT.C:
			if !inv.responded.Load() {
				outcome, why = DialFailed, fmt.Errorf("telephony: dial: no response from %s", p.uri.HostPort())
			}
		case <-ringT.C:
			outcome, why = DialUnanswered, errRingTimeout
		case <-ctx.Done():
			outcome, why = DialUnanswered, ctx.Err()
		case <-s.stop:
			outcome, why = DialFailed, errNotServing
		}
	}
	if why == errRingTimeout { // a final response just in time wins
		for pending := true; pending; {
			select {
			case ev := <-inv.events:
				if ev.early {
					continue // its media goes with the final result
				}
				if ev.err != nil {
					endEarly()
				}
				return s.dialDone(inv.d, ev, early, p.o, log)
			default:
				pending = false
			}
		}
	}
	log.Debug("dial: giving up", "reason", why)
	endEarly()
	inv.cancel() // sipgo sends CANCEL once a provisional response has come
	grace := time.Duration(0)
	if inv.responded.Load() {
		grace = cancelGrace // CANCEL, 200, 487: let the far end stop ringing first
	}
	s.abandon(inv, grace, log)
	if why == errRingTimeout {
		why = nil
	}
	return nil, outcome, nil, why
}

// abandon waits up to grace for the INVITE Dial gave up on to end, then leaves its clean-up to
// the background.
func (s *Server) abandon(inv *invite, grace time.Duration, log *slog.Logger) {
	graceT := time.NewTimer(grace)
	defer graceT.Stop()
	for {
		select {
		case ev := <-inv.events:
			if ev.early {
				continue // its media is closed with the dialog below
			}
			go abandonInvite(inv.d, ev.med, ev.err)
			return
		case <-graceT.C:
			if inv.state.CompareAndSwap(invitePending, inviteAbandoned) {
				log.Debug("dial: INVITE still winding down")
				return
			}
			// Delivered just now: the final event is on its way.
			for ev := range inv.events {
				if !ev.early {
					go abandonInvite(inv.d, ev.med, ev.err)
					return
				}
			}
		}
	}
}

// dialDone turns the INVITE's final result into the attempt's: the answered leg (early, when
// early media came first), a failure outcome, or a redirect target.
func (s *Server) dialDone(d *diago.DialogClientSession, ev inviteEvent, early *Leg, o DialOptions, log *slog.Logger) (*Leg, DialOutcome, *sip.Uri, error) {
	if err := ev.err; err != nil {
		if ev.med != nil {
			_ = ev.med.Close()
		}
		_ = d.Close()
		var pres *sipgo.ErrDialogResponse
		var vres sipgo.ErrDialogResponse
		var res *sip.Response
		switch {
		case errors.As(err, &pres):
			res = pres.Res
		case errors.As(err, &vres):
			res = vres.Res
		}
		code := 0
		if res != nil {
			code = res.StatusCode
		}
		log.Debug("dial: not answered", "status", code, "err", err)
		switch {
		case code == sip.StatusBusyHere || code == sip.StatusGlobalBusyEverywhere:
			return nil, DialBusy, nil, &ResponseError{Code: code, Reason: res.Reason}
		case code == 0:
			return nil, DialFailed, nil, fmt.Errorf("telephony: dial: %w", err)
		case code >= 300 && code < 400:
			next, ok := redirectTarget(res)
			if !ok {
				return nil, DialFailed, nil, fmt.Errorf("telephony: dial: %d %s without a SIP Contact to follow", code, reasonPhrase(code))
			}
			return nil, DialFailed, &next, nil
		}
		return nil, DialFailed, nil, fmt.Errorf("telephony: dial: %w", &ResponseError{Code: code, Reason: res.Reason})
	}

	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if err := d.Ack(ctx); err != nil {
		if early != nil {
			early.finish()
		}
		abandonAnswered(d, ev.med)
		return nil, DialFailed, nil, fmt.Errorf("telephony: dial: ack: %w", err)
	}
	l := early
	if l == nil {
		l = newOutboundLeg(d, ev.med, o.CallerID, o.Dest, s.log)
		l.tag.Set(o.Session)
	} else {
		l.mediaUpdated(ev.med) // the 200's SDP may differ from the 183's
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		go func() { _ = l.Hangup(); _ = d.Close() }()
		return nil, DialFailed, nil, errNotServing
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
	return l, DialAnswered, nil, nil
}

// newOutboundLeg wraps an outgoing dialog whose media runs (answered and ACKed, or early).
func newOutboundLeg(d *diago.DialogClientSession, med *diago.DialogMedia, from, to string, log *slog.Logger) *Leg {
	l := &Leg{
		dlg:      d,
		id:       d.InviteRequest.CallID().Value(),
		from:     from,
		to:       to,
		toHeader: to,
		done:     make(chan struct{}),
		playSem:  make(chan struct{}, 1),
		pacer:    nextPacer(),
		digits:   make(chan rune, 32),
	}
	l.log = l.tag.Logger(log.With("call_id", l.id, "dir", "out"))
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
