package ivr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"
)

func newID(prefix string, nbytes int) string {
	b := make([]byte, nbytes)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// session is the engine's live view of one call: its state machine (the persisted part) and
// what only a running process has (the call, timers, the running recording). Fields are
// guarded by Engine.mu, except jmu.
type session struct {
	jmu sync.Mutex // serialises journal writes and queueing (see Engine.flush)
	m   machine
	// log carries the session's id (and, named by its call, the call's Call-ID); set before
	// the session is shared, never changed.
	log *slog.Logger
	// preparing is a block request whose msg is being prepared: the session answers later
	// requests as if it ran (nothing is owed or journaled until it is accepted).
	preparing  *block
	call       Call
	running    int       // blocks whose goroutine has not finished
	endCause   string    // why we are ending the call, for the timeline (hang-up, idle timeout)
	recording  Recording // the running Monitor recording
	finishing  bool      // the Monitor recording is being finished
	idleGen    int       // invalidates stale idle timers
	idle       *time.Timer
	taps       tapSet             // what the call's audio feeds (set on the call once attached)
	keys       keypad             // the caller's keys, for the block listening
	unhold     func()             // stops the Hold loop
	holdDone   chan struct{}      // closed when the Hold loop has stopped
	dialCancel context.CancelFunc // aborts an outbound call still ringing
	retry      *time.Timer        // retries queueing notifications the notifier refused
	retries    int
	hungUpBy   string // who ended the call when the line cannot tell (ByFarEnd), else ""
	over       bool   // the call's end is logged and counted (callOver)
	lost       bool   // taken over by another node: dropped, nothing more is journaled (takeover.go)
}

func (s *session) id() string { return s.m.rec.ID }
