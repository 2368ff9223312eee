package ivr

import "time"

// Monitor (seed + spec §4): plays msg, then records the whole rest of the call. Once recording
// has started the block is complete (notification with call_state=ongoing); when the call has
// ended and the MP3 is stored, monitor_notify_url (else notify_url) gets monitor_url.
var monitorSpec = blockSpec{parse: func(c *checker) *block {
	msg := c.msg(MaxMsgMonitor)
	tag := c.tag()
	target := c.notifyURL("notify_url", true)
	monTarget := c.notifyURL("monitor_notify_url", false)
	if monTarget == "" {
		monTarget = target
	}
	return &block{name: "monitor", msg: msg, tag: tag, target: target,
		check: func(s *session) string {
			if s.rec.Monitor != nil {
				return StatusMonitorInProgress
			}
			return ""
		},
		run: func(x *exec, pcm []int16) map[string]string {
			if x.answer() != nil || x.play(pcm) != nil {
				return nil // ended before recording began: nothing was recorded
			}
			x.startMonitor(monTarget, tag)
			return nil
		}}
}}

// startMonitor starts recording both directions of the call.
func (x *exec) startMonitor(target, tag string) {
	e, s := x.e, x.s
	now := time.Now()
	id := newID("rec-", 10)
	r, err := e.d.Recorders.Start(RecordingInfo{ID: id, SessionID: s.rec.ID, Kind: "monitor", Start: now})
	if err != nil {
		e.log.Error("monitor: start recording", "session", s.rec.ID, "err", err)
		return
	}
	e.mu.Lock()
	s.rec.Monitor = &MonitorRecord{RecordingID: id, Target: target, Tag: tag, StartedAt: now}
	ended := s.ended
	if !ended {
		s.recording = r
	}
	rec := s.rec
	e.mu.Unlock()
	e.save(s)
	if ended {
		e.finishMonitor(s, r, rec.EndedAt)
		return
	}
	s.taps.set(true, r)
}
