package ivr

import (
	"context"
	"time"
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
	s := e.newSession(appID, StateRinging)
	s.rec.Dest = d.dest
	s.busy = true
	if d.target == "" {
		s.endAccepted = true // no notify_url: hang up after the block
	}
	if !e.admit(s) {
		return resp(StatusCallLimitReached)
	}
	pcm, st := e.prepare(ctx, d.msg)
	if st != "" {
		e.forget(s)
		return resp(st)
	}
	n := Notice{Block: "dial", Target: d.target, Tag: d.tag, Extra: map[string]string{"dest": d.dest}}
	s.rec.Pending = &n
	if err := e.journal(s.rec); err != nil {
		e.forget(s)
		return resp(StatusInternal)
	}
	dctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	s.dialCancel = cancel
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		e.runDial(dctx, s, d, n, pcm)
	}()
	return Response{Status: StatusOK, Fields: map[string]string{"txn_ref": s.rec.TxnRef, "session": s.rec.ID}}
}

func (e *Engine) runDial(ctx context.Context, s *session, d dialParams, n Notice, pcm []int16) {
	call, outcome, err := e.d.Telephony.Dial(ctx, d.dest, d.callerID, nil)
	if err != nil {
		e.log.Info("dial failed", "session", s.rec.ID, "dest", d.dest, "err", err)
	}
	n.Extra["dial_status"] = outcome
	if outcome != DialAnswered || call == nil {
		// The call never came up: the session ends here with its one notification.
		e.mu.Lock()
		s.ended, s.busy, s.endNotified = true, false, true
		s.rec.State, s.rec.EndedAt, s.rec.Pending, s.rec.Last = StateEnded, time.Now(), nil, &n
		rec := s.rec
		e.mu.Unlock()
		e.notify(rec, n, StateEnded)
		e.save(s)
		time.AfterFunc(e.cfg.KeepEnded, func() { e.forget(s) })
		return
	}
	e.mu.Lock()
	s.rec.State, s.rec.AnsweredAt = StateOngoing, time.Now()
	s.seq++
	seq := s.seq
	e.mu.Unlock()
	e.attach(s, call)
	if d.maxDuration > 0 {
		time.AfterFunc(time.Duration(d.maxDuration)*time.Second, func() { _ = call.Hangup() })
	}
	x := &exec{e: e, s: s, ctx: context.Background()}
	if x.play(pcm) == nil && d.target == "" {
		x.hangup()
	}
	e.blockDone(s, seq, &block{name: "dial", silent: d.target == ""}, n, n.Extra)
}
