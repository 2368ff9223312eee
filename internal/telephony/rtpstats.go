package telephony

import (
	"errors"
	"sync/atomic"
	"time"
)

// lateAfter: a frame sent more than this after it was due is late. A pacer sends each frame
// within half a tick of its due time when it keeps its schedule; one a whole tick late missed
// a wake-up (the machine was short of CPU).
const lateAfter = pacerTick

// Counters of the 20 ms frames sent to callers by every pacer and mixer of the process, since
// it started (read by /metrics). They are added once per pacer tick or mixer round, never per
// frame.
var rtpSent, rtpLate, rtpLost atomic.Uint64

// RTPFrames returns the frames sent, those sent late (more than a pacer tick after they were
// due) and those due and never sent (skipped when a schedule restarted after a stall, or
// whose send failed), over the process's life. Frames withheld while a caller holds the call
// are in none of them.
func RTPFrames() (sent, late, lost uint64) {
	return rtpSent.Load(), rtpLate.Load(), rtpLost.Load()
}

// frameTally counts the frames of one tick or round, sent at one time, and adds them to the
// counters at its end.
type frameTally struct {
	sent, late, lost uint64
	lateBefore       time.Time // frames due before this are late
}

// newTally starts counting the frames sent at now.
func newTally(now time.Time) frameTally { return frameTally{lateBefore: now.Add(-lateAfter)} }

// sent counts one frame due at due, sent.
func (t *frameTally) sentFrame(due time.Time) {
	t.sent++
	if due.Before(t.lateBefore) {
		t.late++
	}
}

// failed counts a frame whose writeFrame failed with err: lost, unless it was not to be sent
// (the call ended, or another sender has taken the leg over).
func (t *frameTally) failed(err error) {
	if !errors.Is(err, ErrCallEnded) && !errors.Is(err, errAttached) && !errors.Is(err, errDetached) {
		t.lost++
	}
}

// result counts one frame due at due whose writeFrame returned err. A frame withheld while
// the caller holds the call counts as neither sent nor lost.
func (t *frameTally) result(l *Leg, due time.Time, err error) {
	switch {
	case err != nil:
		t.failed(err)
	case !l.held.Load():
		t.sentFrame(due)
	}
}

// skipped counts the frames due over lag that a schedule restarting after a stall drops.
func (t *frameTally) skipped(lag time.Duration) { t.lost += uint64(lag / frameDur) }

// add adds the tally to the counters.
func (t *frameTally) add() {
	if t.sent > 0 {
		rtpSent.Add(t.sent)
	}
	if t.late > 0 {
		rtpLate.Add(t.late)
	}
	if t.lost > 0 {
		rtpLost.Add(t.lost)
	}
}

// skipped counts the frames the members of a mix lose when its schedule restarts after a
// stall of lag.
func (mx *mixer) skipped(lag time.Duration) {
	mx.mu.Lock()
	n := len(mx.members)
	mx.mu.Unlock()
	var t frameTally
	t.skipped(lag)
	rtpLost.Add(t.lost * uint64(n))
}
