package ivr

import (
	"strings"
	"time"
)

// PauseMonitor answers /open/ivr/monitor/pause (ours): the session's Monitor recording stops
// taking the call's audio until ResumeMonitor. Like a forced Hangup it is taken at any moment
// of a live session, whatever block runs. Checks, in order: session (exists, this app's, not
// ended), pause_behavior (silence, the default, or skip), a Monitor recording running
// (error_monitor_not_in_progress). Pausing a paused recording succeeds and changes nothing:
// the first pause's behaviour holds.
func (e *Engine) PauseMonitor(appID string, p Params) Response {
	return e.pauseOrResume(appID, p, true)
}

// ResumeMonitor answers /open/ivr/monitor/resume (ours): the paused Monitor recording takes
// the call's audio again. Same checks as PauseMonitor (pause_behavior is checked, and has no
// effect); resuming a recording that is not paused succeeds and changes nothing.
func (e *Engine) ResumeMonitor(appID string, p Params) Response {
	return e.pauseOrResume(appID, p, false)
}

func (e *Engine) pauseOrResume(appID string, p Params, pause bool) Response {
	sid := p["session"]
	if sid == "" {
		return resp(Missing("session"))
	}
	e.mu.Lock()
	_, st := e.lookup(appID, sid, "", true)
	e.mu.Unlock()
	if st != "" {
		return resp(st)
	}
	behavior := PauseSilence
	if v := p["pause_behavior"]; v != "" {
		switch {
		case strings.EqualFold(v, PauseSilence):
		case strings.EqualFold(v, PauseSkip):
			behavior = PauseSkip
		default:
			return resp(StatusInvalidPauseBehavior)
		}
	}

	now := time.Now()
	e.mu.Lock()
	s, st := e.lookup(appID, sid, "", true) // the session may have moved on meanwhile
	changed := false
	if st == "" {
		changed, st = e.applyPause(s, pause, behavior, now)
	}
	e.mu.Unlock()
	if st != "" {
		return resp(st)
	}
	if changed {
		e.flush(s)
	}
	return resp(StatusOK)
}

// applyPause pauses or resumes s's Monitor recording at now, under e.mu. It reports whether
// anything changed, or the status that refuses it. The recording itself is paused before the
// journal write: no audio after now goes to the file, whatever the write costs.
func (e *Engine) applyPause(s *session, pause bool, behavior string, now time.Time) (bool, string) {
	mon := s.m.rec.Monitor
	switch {
	case mon == nil:
		return false, StatusMonitorNotInProgress
	case pause == (mon.Pause != nil):
		return false, "" // already paused, or not paused: nothing to do
	}
	var err error
	if pause {
		err = s.m.pause(behavior, now)
	} else {
		err = s.m.resume(now)
	}
	if err != nil { // the call is ending (its recording is being finished)
		s.log.Info("monitor: pause or resume refused", "err", err)
		return false, StatusSessionEnded
	}
	if r := s.recording; r != nil {
		if pause {
			r.Pause(now, behavior == PauseSkip)
		} else {
			r.Resume(now)
		}
	}
	return true, ""
}
