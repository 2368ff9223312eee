package ivr

import (
	"context"
	"errors"
	"strings"

	"github.com/ivrd/ivrd/internal/calllog"
)

func init() {
	blocks["hold"] = holdSpec
	blocks["unhold"] = unholdSpec
	blocks["transfer"] = transferSpec
}

// ErrNoRoom and ErrRoomFull are what Telephony.JoinRoom fails with.
var (
	ErrNoRoom   = errors.New("ivr: no such room")
	ErrRoomFull = errors.New("ivr: room is full")
)

// Hold: loops msg (or hold music) until Unhold; sends no notification. Meanwhile every block
// but Unhold and a forced Hangup answers error_session_not_ready.
var holdSpec = blockSpec{parse: func(c *checker) *block {
	msg := c.msg(MaxMsg)
	var ctx context.Context
	var done chan struct{}
	return &block{name: "hold", msg: msg, silent: true,
		accept: func(s *session) { // held from the moment Hold is accepted
			var stop context.CancelFunc
			ctx, stop = context.WithCancel(context.Background())
			done = make(chan struct{})
			s.unhold, s.holdDone = stop, done
		},
		run: func(x *exec, pcm []int16) map[string]string {
			if len(pcm) == 0 {
				pcm = x.e.d.HoldMusic
			}
			defer close(done)
			if x.answer() != nil {
				return nil
			}
			for ctx.Err() == nil && !isDone(x.s.call) {
				if len(pcm) == 0 {
					select {
					case <-ctx.Done():
					case <-x.s.call.Done():
					}
					break
				}
				_ = x.s.call.Play(ctx, pcm)
			}
			return nil
		}}
}}

// Unhold: ends Hold and notifies. Without notify_url the call is hung up instead.
var unholdSpec = blockSpec{
	parse: func(c *checker) *block {
		tag := c.tag()
		target := c.notifyURL("notify_url", false)
		return &block{name: "unhold", tag: tag, target: target, end: target == "",
			check: func(s *session) string {
				if s.m.rec.Phase != PhaseHeld {
					return StatusSessionNotOnHold
				}
				return ""
			},
			run: func(x *exec, _ []int16) map[string]string {
				x.e.mu.Lock()
				stop, done := x.s.unhold, x.s.holdDone
				x.s.unhold = nil
				x.e.mu.Unlock()
				if stop != nil {
					stop()
					<-done
				}
				if target == "" {
					x.hangup()
				}
				return nil
			}}
	},
}

// Transfer: plays msg, then connects the caller to dest through the trunk (or to a conference
// room with dest=room:<id>, or a new room with dest=room:). On success the notification comes
// when the transferred call ends; on failure, on_failure=continue gives the call back to the app
// (call_state=ongoing), on_failure=hangup ends it. A running Monitor records the far party and the
// room too: what the caller hears is what the Monitor's outbound side taps.
var transferSpec = blockSpec{parse: func(c *checker) *block {
	e := c.e
	dest := c.p["dest"]
	room, isRoom := strings.CutPrefix(dest, "room:")
	newRoom := isRoom && room == ""
	switch {
	case dest == "":
		c.fail(Missing("dest"))
	case isRoom && !newRoom && !validRoomID(room):
		c.fail(StatusInvalidRoom)
	case isRoom && !newRoom && (e.d.Telephony == nil || !e.d.Telephony.RoomExists(room)):
		c.fail(StatusInvalidRoom)
	case isRoom && e.d.Telephony == nil:
		c.fail(StatusDestNotSupported)
	case !isRoom && !isE164(dest):
		c.fail(StatusDestInvalid)
	case !isRoom && (e.d.Telephony == nil || !e.d.Trunk):
		c.fail(StatusDestNotSupported)
	}
	msg := c.msg(MaxMsg)
	callerID := c.callerID()
	onFailure := c.oneOf("on_failure", "hangup", StatusOnFailureInvalid, "hangup", "continue")
	tag := c.tag()
	target := c.notifyURL("notify_url", false)
	if newRoom {
		room = newID("R", 6)
	}
	b := &block{name: "transfer", msg: msg, tag: tag, target: target, end: true}
	if isRoom {
		b.fields = map[string]string{"room": room}
	}
	b.run = func(x *exec, pcm []int16) map[string]string {
		if x.answer() != nil || x.play(pcm) != nil {
			return map[string]string{"transfer_status": DialFailed}
		}
		if isRoom {
			leave, err := x.e.d.Telephony.JoinRoom(room, newRoom, x.s.call)
			if err != nil {
				x.s.log.Warn("transfer: join room", "room", room, "err", err)
				return x.transferFailed(DialFailed, onFailure, map[string]string{"room": room})
			}
			select {
			case <-x.s.call.Done():
			case <-x.ctx.Done():
			}
			leave()
			return map[string]string{"transfer_status": DialAnswered, "room": room}
		}
		// The caller hears the far end's early media (ringback, announcements) as it comes.
		far, outcome, err := x.e.d.Telephony.Dial(calllog.WithSession(x.ctx, x.s.id()), dest, callerID, x.s.call)
		if err != nil {
			x.s.log.Info("transfer: dial", "dest", dest, "err", err)
		}
		if outcome != DialAnswered || far == nil {
			return x.transferFailed(outcome, onFailure, nil)
		}
		stop := x.e.d.Telephony.Bridge(x.s.call, far)
		select {
		case <-x.s.call.Done():
		case <-far.Done():
			x.e.mu.Lock()
			if !isDone(x.s.call) { // the far end hung up first: ivrd hangs up the caller
				x.s.hungUpBy = ByFarEnd
			}
			x.e.mu.Unlock()
		case <-x.ctx.Done():
		}
		stop()
		_ = far.Hangup()
		x.hangup()
		return map[string]string{"transfer_status": DialAnswered}
	}
	return b
}}

// transferFailed settles a failed transfer per on_failure.
func (x *exec) transferFailed(outcome, onFailure string, extra map[string]string) map[string]string {
	out := map[string]string{"transfer_status": outcome}
	for k, v := range extra {
		out[k] = v
	}
	if onFailure == "continue" && !isDone(x.s.call) {
		return out // the app goes on with the call
	}
	x.hangup()
	return out
}

// validRoomID: letters, digits, '-' and '_', at most 64.
func validRoomID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
