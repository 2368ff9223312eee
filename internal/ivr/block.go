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
	// force reports whether the request is taken whatever the session runs (forced Hangup).
	force func(Params) bool
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
	extra  map[string]string // fields its notification carries even if the block is cut short
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
	e      *Engine
	s      *session
	ctx    context.Context
	run    int    // the block's run number in its session
	name   string // the block's name ("play", "dial", ...)
	hungUp bool   // the block ended the call (hangup)
	failed bool   // the block could not do its work (a recording that did not start)
}

// How a block ended: the status label of ivrd_blocks_total.
const (
	BlockCompleted   = "completed"   // it did its work (a Hangup, or a connected Transfer, whoever hung up after)
	BlockInterrupted = "interrupted" // the call ended, or a forced Hangup came, before it was done
	BlockFailed      = "failed"      // it could not: Dial or Transfer not connected, a recording that did not start
)

// status says how the block ended, given its notification's fields; e.mu is held, before
// the block's done transition.
func (x *exec) status(extra map[string]string) string {
	rec := &x.s.m.rec
	cur := rec.Current
	for _, k := range []string{"dial_status", "transfer_status"} {
		if v, ok := extra[k]; ok && v != DialAnswered {
			return BlockFailed
		}
	}
	switch {
	case x.failed:
		return BlockFailed
	case x.hungUp:
		return BlockCompleted
	case rec.Line == LineDown || rec.Phase == PhaseEnding:
		return BlockInterrupted
	case cur != nil && cur.Run != x.run && cur.Name == "hangup":
		return BlockInterrupted // overtaken by a forced Hangup
	}
	return BlockCompleted
}

// answer answers the call if it is not answered yet. Only the session's current block may
// start an answer; one overtaken by a forced Hangup gets ErrCallEnded instead. An answer that
// fails (the caller's offer refused, the call dropped during set-up) ends the session.
func (x *exec) answer() error {
	e, s := x.e, x.s
	e.mu.Lock()
	line, call := s.m.rec.Line, s.call
	var err error
	if line == LineRinging && call != nil {
		err = s.m.answering(x.run)
	}
	e.mu.Unlock()
	switch {
	case call == nil || line == LineDown || line == LineDialing:
		return ErrCallEnded
	case line == LineUp:
		return nil
	case line == LineRinging && err != nil:
		return ErrCallEnded
	case line == LineRinging:
		e.flush(s) // journaled as answering before the 200 OK goes out
	}
	// line == LineAnswering: another block's answer is under way; Answer shares it.
	if aerr := call.Answer(x.ctx); aerr != nil {
		s.log.Warn("answer failed", "err", aerr)
		e.mu.Lock()
		cur := s.m.rec.Current
		if cur != nil && cur.Run == x.run && legal(evFail, s.m.rec.Phase, s.m.rec.Line) {
			err = s.m.fail("answer failed: " + aerr.Error())
			if s.endCause == "" {
				s.endCause = "answer failed"
			}
		}
		e.mu.Unlock()
		if err != nil {
			s.log.Error("answer failed", "err", err)
		}
		e.flush(s)
		return ErrCallEnded
	}
	e.mu.Lock()
	switch s.m.rec.Line {
	case LineAnswering:
		err = s.m.answered(dialogOf(call))
	case LineUp:
	default:
		err = ErrCallEnded
	}
	if cur := s.m.rec.Current; cur != nil && cur.Run != x.run && cur.Name == "hangup" {
		err = ErrCallEnded // overtaken by a forced Hangup while answering: go no further
	}
	e.mu.Unlock()
	if err != nil {
		return ErrCallEnded
	}
	e.flush(s)
	return nil
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

// hangup ends the call (refusing it if it was never answered; giving up an outbound call still
// dialing) and waits briefly for the end. The decision is taken on the session's line under the
// engine lock, where a block starting an answer is seen: a call being answered is hung up
// (BYE once the answer completes), never refused.
func (x *exec) hangup() {
	e, s := x.e, x.s
	e.mu.Lock()
	x.hungUp = true
	if s.endCause == "" {
		s.endCause = "hangup"
	}
	line, call, cancelDial := s.m.rec.Line, s.call, s.dialCancel
	e.mu.Unlock()
	switch {
	case line == LineDialing || call == nil:
		if cancelDial != nil {
			cancelDial()
		}
		return
	case line == LineDown:
		return
	}
	endCall(call, line, 603)
	select {
	case <-call.Done():
	case <-time.After(5 * time.Second):
		s.log.Warn("call did not end after hangup")
	}
}
