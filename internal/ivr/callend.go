package ivr

import (
	"log/slog"
	"time"

	"github.com/ivrd/ivrd/internal/metrics"
)

// Who ended a call: the hung_up_by field of the "call ended" log line, and the outcome of
// ivrd_calls_total.
const (
	ByCaller = "caller"  // the caller of an incoming call (a BYE, or a CANCEL before the answer)
	ByCallee = "callee"  // the party a Dial called
	ByIvrd   = "ivrd"    // ivrd: a Hangup, the idle timeout, max_duration, a failed answer, shutdown, a crash
	ByFarEnd = "far_end" // the far end of a Transfer (ivrd then hung up the caller)
)

// CauseIvrdHungUp is the cause of a call the SIP layer ended without a block asking (ivrd's
// shutdown).
const CauseIvrdHungUp = "ivrd hung up"

// hangupOutcome is the outcome of an answered call by who ended it.
var hangupOutcome = map[string]string{
	ByCaller: metrics.CallerHangup,
	ByCallee: metrics.CalleeHangup,
	ByIvrd:   metrics.IvrdHangup,
	ByFarEnd: metrics.FarEndHangup,
}

// NamedCall is a Call whose log lines can carry the session it belongs to (telephony's Leg).
type NamedCall interface {
	// NameSession makes the call's later log lines carry session ("": none any more) and
	// returns the call's logger.
	NameSession(session string) *slog.Logger
}

// RemoteEnder is a Call that knows who ended it (telephony's Leg).
type RemoteEnder interface {
	// EndedByRemote reports whether the other party ended the call rather than ivrd.
	EndedByRemote() bool
}

// nameCall names c's session and returns c's logger; nil when c cannot be named.
func nameCall(c Call, session string) *slog.Logger {
	if n, ok := c.(NamedCall); ok {
		return n.NameSession(session)
	}
	return nil
}

// whoEnded says who ended s's call (over now); e.mu is held.
func (s *session) whoEnded() string {
	if s.hungUpBy != "" {
		return s.hungUpBy
	}
	remote := ByCaller
	if s.m.rec.Dest != "" {
		remote = ByCallee
	}
	if c, ok := s.call.(RemoteEnder); ok {
		if c.EndedByRemote() {
			return remote
		}
		return ByIvrd
	}
	if s.endCause != "" { // a Call that cannot tell: ivrd ended it if it meant to
		return ByIvrd
	}
	return remote
}

// callOver logs the end of s's call in one line and counts it, once: when its line goes down,
// when a Dial never connected, or (crashed) when Recover settles a call a crashed process was
// carrying. e.mu is not held.
func (e *Engine) callOver(s *session, crashed bool) {
	e.mu.Lock()
	if s.over {
		e.mu.Unlock()
		return
	}
	s.over = true
	rec := &s.m.rec
	who := ByIvrd
	if !crashed {
		who = s.whoEnded()
	}
	dir, to := metrics.Inbound, rec.To
	if rec.Dest != "" {
		dir, to = metrics.Outbound, rec.Dest
	}
	end := rec.EndedAt
	if end.IsZero() {
		end = time.Now()
	}
	var talk time.Duration
	answered := !rec.AnsweredAt.IsZero()
	if answered {
		talk = end.Sub(rec.AnsweredAt)
	}
	recording := ""
	if rec.Monitor != nil {
		recording = rec.Monitor.RecordingID
	}
	from, cause, blocks, duration := rec.From, rec.Cause, rec.Runs, end.Sub(rec.StartedAt)
	e.mu.Unlock()

	s.log.Info("call ended", "dir", dir, "from", from, "to", to, "duration_ms", duration.Milliseconds(),
		"talk_ms", talk.Milliseconds(), "cause", cause, "hung_up_by", who, "blocks", blocks, "recording", recording)
	switch {
	case crashed:
		e.d.Calls.Count(dir, metrics.Crashed)
	case !answered:
		e.d.Calls.Ended(dir, metrics.Unanswered)
	default:
		e.d.Calls.Ended(dir, hangupOutcome[who])
	}
}
