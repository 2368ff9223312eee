package ivr

import (
	"errors"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
)

// Several servers (nodes) may share one journal. A session belongs to the node carrying its
// call; when a node dies another takes its sessions over and settles them (Settle, the same
// settle as crash recovery). A node that was only cut off, not dead, learns that its session
// went to another node when the journal refuses its next write (ErrNotOwner), or when it
// asks (Drop): it then drops the session without a trace of its own: the call is hung up,
// recordings are discarded (the new owner finished them from what was uploaded), and nothing
// more is journaled or notified, since the new owner has settled everything the session owed.

// ErrNotOwner is what a Journal's SaveSession returns (wrapped) for a session another node
// has taken over.
var ErrNotOwner = errors.New("ivr: session taken over by another node")

// Discarder is a Recording that can be dropped unfinished: capture stops and nothing is
// stored. A Recording without it is finished instead.
type Discarder interface {
	Discard()
}

// Settle settles sessions journaled unfinished that no call of this server carries: those a
// crash left (Recover), or those taken over from a node that died. Each goes through the
// same transitions as in Recover; files finds their recordings. It returns how many were
// settled; the others are logged and stay unfinished.
func (e *Engine) Settle(recs []SessionRecord, files RecordingFiles) int {
	settled := 0
	for _, rec := range recs {
		n, err := e.recoverSession(rec, files)
		if err != nil {
			e.log.Error("recover: session left unfinished", calllog.Key, rec.ID, "err", err)
			continue
		}
		settled++
		e.log.Info("recovered session", calllog.Key, rec.ID, "phase", rec.Phase, "notifications", n)
	}
	return settled
}

// Drop drops session id, which another node has taken over (see ErrNotOwner), and reports
// whether this server had it.
func (e *Engine) Drop(id string) bool {
	e.mu.Lock()
	s := e.sessions[id]
	e.mu.Unlock()
	if s == nil {
		return false
	}
	e.drop(s, ErrNotOwner)
	return true
}

// drop ends a session another node owns now: it is forgotten at once (API requests for it go
// to its new owner), its timers stop, its Monitor recording is discarded and its call hung
// up. Blocks still running finish on their own; nothing of theirs is journaled or notified.
func (e *Engine) drop(s *session, why error) {
	e.mu.Lock()
	if s.lost {
		e.mu.Unlock()
		return
	}
	s.lost = true
	s.idleGen++
	if s.idle != nil {
		s.idle.Stop()
	}
	if s.retry != nil {
		s.retry.Stop()
		s.retry = nil
	}
	r := s.recording
	s.recording = nil
	call, line, cancel := s.call, s.m.rec.Line, s.dialCancel
	if e.sessions[s.id()] == s {
		delete(e.sessions, s.id())
	}
	e.mu.Unlock()
	e.log.Warn("session taken over by another node: dropped here", calllog.Key, s.id(), "reason", why)
	s.taps.setMonitor(nil)
	discard(r)
	if cancel != nil {
		cancel()
	}
	go endCall(call, line, 480) // a BYE waits for its answer: not under the journal's lock
}

// isLost reports whether s was dropped.
func (e *Engine) isLost(s *session) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return s.lost
}

// discard drops a recording unfinished (finishes it where it cannot be dropped).
func discard(r Recording) {
	switch d := r.(type) {
	case nil:
	case Discarder:
		d.Discard()
	default:
		_, _ = r.Finish(time.Now())
	}
}

// finishRecording finishes a block's recording at end and returns its URL; in a dropped
// session it discards it instead and returns "".
func (x *exec) finishRecording(r Recording, end time.Time) (string, error) {
	if x.e.isLost(x.s) {
		discard(r)
		return "", nil
	}
	return r.Finish(end)
}
