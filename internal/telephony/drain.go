package telephony

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A drain lets a server be stopped without cutting its calls: it refuses new INVITEs (503
// Service Unavailable, with Retry-After: the time the drain has left) while the calls it
// carries go on, until they have all ended or the time is up. Serve's end then hangs up the
// rest. Calls placed meanwhile (Dial, Transfer of a live call) go ahead and count as live.

// drainLogEvery is how often a drain logs the calls left when that number does not change.
const drainLogEvery = 30 * time.Second

// drainPoll is how often a drain looks at the calls left.
const drainPoll = 100 * time.Millisecond

// Calls returns how many calls the server carries: incoming (ringing or answered) and
// dialled.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.legs)
}

// Drain stops taking new calls and waits until every call the server carries has ended, until
// timeout has passed, or until ctx ends (a second stop signal), logging its start, the calls
// left as they end, and its end. It returns the number of calls left, which Serve's end hangs
// up. A timeout of 0 drains nothing: it returns at once and new calls are refused only once
// Serve ends.
func (s *Server) Drain(ctx context.Context, timeout time.Duration) int {
	if timeout <= 0 {
		return s.Calls()
	}
	start := time.Now()
	s.mu.Lock()
	s.drainUntil = start.Add(timeout)
	s.mu.Unlock()
	left := s.Calls()
	s.log.Info("drain started: new calls are refused (503)", "calls", left, "timeout", timeout)
	reason := "all calls ended"
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	lastLog, logged := start, left
	for left > 0 {
		select {
		case <-tick.C:
			left = s.Calls()
			if now := time.Now(); left > 0 && (left != logged && now.Sub(lastLog) >= time.Second || now.Sub(lastLog) >= drainLogEvery) {
				s.log.Info("drain: calls left", "calls", left, "remaining", start.Add(timeout).Sub(now).Round(time.Second))
				lastLog, logged = now, left
			}
			continue
		case <-deadline.C:
			reason = "timeout"
		case <-ctx.Done():
			reason = "cut short"
		}
		left = s.Calls()
		break
	}
	s.log.Info("drain ended", "reason", reason, "calls_left", left, "took", time.Since(start).Round(time.Millisecond))
	return left
}

// drainRefusal is the response to a new INVITE (or an OPTIONS probe) while the server
// drains, nil when it does not.
func (s *Server) drainRefusal(req *sip.Request) *sip.Response {
	s.mu.Lock()
	until := s.drainUntil
	s.mu.Unlock()
	if until.IsZero() {
		return nil
	}
	retry := max(1, int(math.Ceil(time.Until(until).Seconds())))
	s.log.Info(string(req.Method)+" refused: draining (503)", "call_id", callID(req), "source", req.Source(), "retry_after", retry)
	res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, reasonPhrase(sip.StatusServiceUnavailable), nil)
	res.AppendHeader(sip.NewHeader(hdrRetryAfter, strconv.Itoa(retry)))
	return res
}
