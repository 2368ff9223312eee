package ivr

import (
	"context"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
	"github.com/ivrd/ivrd/internal/metrics"
)

// Block-specific statuses of Dial and Transfer.
const (
	StatusDestInvalid       = "error_dest_invalid"
	StatusDestNotSupported  = "error_dest_not_supported"
	StatusCallerIDInvalid   = "error_caller_id_invalid"
	StatusInvalidMaxDur     = "error_invalid_max_duration"
	StatusCallLimitReached  = "error_concurrent_call_limit_reached"
	StatusOnFailureInvalid  = "error_on_failure_invalid"
	StatusInvalidRoom       = "error_invalid_room"
	StatusSessionNotOnHold  = "error_session_not_on_hold"
	StatusInvalidMaxDigits  = "error_invalid_max_digits"
	StatusInvalidTimeout    = "error_invalid_timeout"
	StatusInvalidAttempts   = "error_invalid_attempts"
	maxCallSeconds          = 24 * 3600
	defaultRecordMaxSeconds = 120
)

// dialParams are Dial's parameters, in its table's order.
type dialParams struct {
	dest, msg, callerID, tag, target string
	maxDuration                      int
}

// Dial (start block): calls dest through the trunk, plays msg once answered, and notifies with
// dial_status. It makes a new session; the answer carries txn_ref and session.
var dialSpec = blockSpec{outbound: true}

func init() { blocks["dial"] = dialSpec }

func (e *Engine) parseDial(c *checker) dialParams {
	var d dialParams
	d.dest = c.p["dest"]
	switch {
	case d.dest == "":
		c.fail(Missing("dest"))
	case !isE164(d.dest):
		c.fail(StatusDestInvalid)
	case e.d.Telephony == nil || !e.d.Trunk:
		c.fail(StatusDestNotSupported)
	}
	d.msg = c.msg(MaxMsg)
	d.callerID = c.callerID()
	d.maxDuration = c.integer("max_duration", 0, 1, maxCallSeconds, StatusInvalidMaxDur)
	d.tag = c.tag()
	d.target = c.notifyURL("notify_url", false)
	return d
}

// handleOutbound runs a Dial request.
func (e *Engine) handleOutbound(ctx context.Context, appID string, _ blockSpec, p Params) Response {
	c := &checker{ctx: ctx, e: e, p: p}
	d := e.parseDial(c)
	if c.status != "" {
		return resp(c.status)
	}
	s := e.newSession(appID)
	s.m.rec.Dest = d.dest
	run, err := s.m.dial(acceptance{name: "dial", target: d.target, tag: d.tag, end: d.target == "", params: p,
		extra: map[string]string{"dest": d.dest}}) // no notify_url: hang up after the block
	if err != nil {
		return resp(StatusInternal)
	}
	s.running = 1
	if !e.admit(s) {
		return resp(StatusCallLimitReached)
	}
	pcm, st := e.prepare(ctx, d.msg)
	if st != "" {
		e.forget(s)
		return resp(st)
	}
	dctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	s.dialCancel = cancel
	e.mu.Unlock()
	if err := e.begin(s); err != nil {
		cancel()
		e.forget(s)
		s.log.Error("journal", "err", err)
		return resp(StatusInternal)
	}
	e.d.Calls.Started(metrics.Outbound)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		e.runDial(dctx, s, d, run, pcm)
	}()
	return Response{Status: StatusOK, Fields: map[string]string{"txn_ref": s.m.rec.TxnRef, "session": s.id()}}
}

// runDial places the call, plays msg once it is answered, and notifies dial_status. A call
// that never comes up ends the session through the same settle as any other end.
func (e *Engine) runDial(ctx context.Context, s *session, d dialParams, run int, pcm []int16) {
	call, outcome, err := e.d.Telephony.Dial(calllog.WithSession(ctx, s.id()), d.dest, d.callerID, nil)
	if err != nil {
		s.log.Info("dial failed", "dest", d.dest, "err", err)
	}
	if call == nil && outcome == DialAnswered {
		outcome = DialFailed
	}
	if outcome != DialAnswered && call != nil {
		_ = call.Hangup()
		call = nil
	}
	e.mu.Lock()
	var dialog []byte
	if call != nil {
		dialog = dialogOf(call)
	}
	err = s.m.dialed(outcome, dialog)
	cur := s.m.rec.Current
	overtaken := cur == nil || cur.Run != run || s.m.rec.Phase == PhaseEnding // a forced Hangup came first
	e.mu.Unlock()
	if err != nil {
		s.log.Error("dialed", "err", err)
	}
	e.flush(s)
	x := &exec{e: e, s: s, ctx: context.Background(), run: run, name: "dial"}
	extra := map[string]string{"dial_status": outcome}
	if call == nil {
		e.callOver(s, false)
		e.blockDone(s, x, extra)
		return
	}
	e.attach(s, call)
	switch {
	case overtaken:
		x.hangup()
	default:
		if d.maxDuration > 0 {
			time.AfterFunc(time.Duration(d.maxDuration)*time.Second, func() {
				e.mu.Lock()
				if s.endCause == "" {
					s.endCause = "max_duration"
				}
				e.mu.Unlock()
				_ = call.Hangup()
			})
		}
		if x.play(pcm) == nil && d.target == "" {
			x.hangup()
		}
	}
	e.blockDone(s, x, extra)
}
