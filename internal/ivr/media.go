package ivr

import (
	"sync"
	"time"
)

// tapSet fans a call's audio out to the recordings running on it: the Monitor recording hears
// both directions, a Record block's recording hears only the caller (both directions too when
// it is dual: the caller left, what the caller hears right).
type tapSet struct {
	mu        sync.Mutex
	monitor   Recording
	record    Recording
	recordOut bool // the Record block's recording hears what the caller hears as well
}

func (t *tapSet) Inbound(pcm []int16, at time.Time) {
	t.mu.Lock()
	m, r := t.monitor, t.record
	t.mu.Unlock()
	if m != nil {
		m.Inbound(pcm, at)
	}
	if r != nil {
		r.Inbound(pcm, at)
	}
}

func (t *tapSet) Outbound(pcm []int16, at time.Time) {
	t.mu.Lock()
	m, r := t.monitor, t.record
	if !t.recordOut {
		r = nil
	}
	t.mu.Unlock()
	if m != nil {
		m.Outbound(pcm, at)
	}
	if r != nil {
		r.Outbound(pcm, at)
	}
}

// setMonitor makes r (nil: nothing) the Monitor recording.
func (t *tapSet) setMonitor(r Recording) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.monitor = r
}

// setRecord makes r (nil: nothing) the Record block's recording; with both it hears what the
// caller hears as well.
func (t *tapSet) setRecord(r Recording, both bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record, t.recordOut = r, both
}

// keypad buffers the keys a caller presses for the block that listens (Gather, Record). Keys
// pressed while no block listens are dropped.
type keypad struct {
	mu sync.Mutex
	ch chan rune
}

// press is the call's DTMF callback.
func (k *keypad) press(d rune) {
	k.mu.Lock()
	ch := k.ch
	k.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- d:
	default: // a block that does not read its keys loses the excess, never blocks the call
	}
}

// listen starts buffering keys for a block; stop ends it.
func (k *keypad) listen() (keys <-chan rune, stop func()) {
	ch := make(chan rune, 300)
	k.mu.Lock()
	k.ch = ch
	k.mu.Unlock()
	return ch, func() {
		k.mu.Lock()
		if k.ch == ch {
			k.ch = nil
		}
		k.mu.Unlock()
	}
}
