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
	channels := c.channels()
	return &block{name: "monitor", msg: msg, tag: tag, target: target,
		check: func(s *session) string {
			if s.m.rec.Monitor != nil {
				return StatusMonitorInProgress
			}
			return ""
		},
		run: func(x *exec, pcm []int16) map[string]string {
			if x.answer() != nil || x.play(pcm) != nil {
				return nil // ended before recording began: nothing was recorded
			}
			x.startMonitor(monTarget, tag, channels)
			return nil
		}}
}}

// startMonitor starts recording both directions of the call. From then on the session owes
// the Monitor result; if the call ended meanwhile the recording is finished at once.
func (x *exec) startMonitor(target, tag string, channels int) {
	e, s := x.e, x.s
	if !x.mayRecord() {
		return
	}
	now := time.Now()
	id := newID("rec-", 10)
	r, err := e.d.Recorders.Start(RecordingInfo{ID: id, AppID: s.m.rec.AppID, SessionID: s.id(), Kind: "monitor", Start: now, Channels: channels, Log: s.log})
	if err != nil {
		s.log.Error("monitor: start recording", "err", err)
		x.failed = true
		return
	}
	e.mu.Lock()
	if err = s.m.recording(x.run, "monitor", id, target, tag, now); err == nil {
		s.recording = r
	}
	e.mu.Unlock()
	if err != nil { // the call ended, or a forced Hangup came, while the recorder started
		s.log.Info("monitor: recording not needed", "err", err)
		_, _ = r.Finish(now)
		return
	}
	e.flush(s)
	s.taps.setMonitor(r)
}

// mayRecord reports whether the block may start a recording: it is current and the call up.
func (x *exec) mayRecord() bool {
	x.e.mu.Lock()
	defer x.e.mu.Unlock()
	return legal(evRecording, x.s.m.rec.Phase, x.s.m.rec.Line) && x.s.m.rec.Current != nil && x.s.m.rec.Current.Run == x.run
}

// recording notes a Record block's recording on the block's notification (journaled, so that
// a crash still delivers what was recorded). False when the block may no longer record.
func (x *exec) recording(kind, id, target, tag string, start time.Time) bool {
	x.e.mu.Lock()
	err := x.s.m.recording(x.run, kind, id, target, tag, start)
	x.e.mu.Unlock()
	if err != nil {
		x.s.log.Info("recording not needed", "err", err)
		return false
	}
	x.e.flush(x.s)
	return true
}
