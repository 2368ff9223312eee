package ivr

import (
	"context"
	"time"
)

// blockSpec is one API block: how to read its parameters into a runnable block.
type blockSpec struct {
	// parse validates the parameters in the order of the block's table (through c) and
	// returns the block to run. When c.status is set the result is ignored.
	parse func(c *checker) *block
	// bypass reports whether the request passes a busy session (forced Hangup, Unhold).
	bypass func(Params) bool
	// outbound blocks (Dial) start a new session instead of naming one.
	outbound bool
}

// block is an accepted request, ready to run.
type block struct {
	name   string
	msg    string // prepared (synthesised/downloaded) before the request is answered
	target string // notify_url
	tag    string
	end    bool              // an End block (or one that ends the call): later requests get error_session_ended
	silent bool              // sends no notification of its own
	fields map[string]string // extra fields of the API answer (e.g. room)
	// check tests the block's state against the session (e.g. error_monitor_in_progress).
	// Called with the engine lock held.
	check func(s *session) string
	// accept runs, with the engine lock held, once the block is accepted and its msg ready.
	accept func(s *session)
	// run executes the block and returns its notification's extra fields.
	run func(x *exec, pcm []int16) map[string]string
}

// blocks are the API's blocks by name (the last element of the request path).
var blocks = map[string]blockSpec{
	"monitor": monitorSpec,
	"play":    playSpec,
	"hangup":  hangupSpec,
}

// Known reports whether name is a block the engine runs for requests.
func Known(name string) bool { _, ok := blocks[name]; return ok }

// exec is what a running block may do to its call.
type exec struct {
	e   *Engine
	s   *session
	ctx context.Context
}

// answer answers the call if it is still ringing.
func (x *exec) answer() error {
	x.e.mu.Lock()
	ringing, call := x.s.rec.State == StateRinging, x.s.call
	x.e.mu.Unlock()
	if call == nil { // an outbound call still dialing
		return ErrCallEnded
	}
	if !ringing {
		return nil
	}
	if err := x.s.call.Answer(x.ctx); err != nil {
		x.e.log.Warn("answer failed", "session", x.s.rec.ID, "err", err)
		return ErrCallEnded
	}
	x.e.mu.Lock()
	x.s.rec.State = StateOngoing
	x.s.rec.AnsweredAt = time.Now()
	x.e.mu.Unlock()
	x.e.save(x.s)
	return nil
}

// ringing reports whether the call has not been answered yet.
func (x *exec) ringing() bool {
	x.e.mu.Lock()
	defer x.e.mu.Unlock()
	return x.s.rec.State == StateRinging
}

// play plays pcm; ErrCallEnded when the call ended meanwhile.
func (x *exec) play(pcm []int16) error {
	if len(pcm) == 0 {
		if isDone(x.s.call) {
			return ErrCallEnded
		}
		return nil
	}
	err := x.s.call.Play(x.ctx, pcm)
	if isDone(x.s.call) {
		return ErrCallEnded
	}
	return err
}

// hangup ends the call (rejecting it if it was never answered) and waits briefly for the end.
func (x *exec) hangup() {
	x.e.mu.Lock()
	x.s.endAccepted = true
	call, cancelDial := x.s.call, x.s.dialCancel
	x.e.mu.Unlock()
	if call == nil { // still dialing: give up the call
		if cancelDial != nil {
			cancelDial()
		}
		return
	}
	if x.ringing() {
		_ = x.s.call.Reject(603)
	} else {
		_ = x.s.call.Hangup()
	}
	select {
	case <-x.s.call.Done():
	case <-time.After(5 * time.Second):
		x.e.log.Warn("call did not end after hangup", "session", x.s.rec.ID)
	}
}
