package telephony

import "errors"

// Bridge connects two answered legs: from now on each hears the other in real time (20 ms
// frames through a small jitter buffer, about 40 ms added delay, at most 120 ms). Each leg's
// tap keeps working: its Inbound is still its own caller, its Outbound is what the mixer sends
// it, that is the other party (plus its own prompts), so a recording on either leg holds both
// parties.
//
// Play on a bridged leg mixes the prompt into what that leg hears, over the other party, who
// does not hear it; it returns when the prompt has played out, as usual.
//
// The bridge ends when either leg ends, when either joins another bridge or a room, or when
// stop is called (stop is idempotent). Neither leg is hung up: afterwards the survivor sends
// its own audio again (silence until the next Play), and a Play in progress carries on.
// Bridging a leg that is already in a bridge or room moves it out of that one first. If either
// leg is not answered or has ended (or a is b), nothing is bridged and stop does nothing.
func Bridge(a, b *Leg) (stop func()) {
	mx := newMixer(2, 2, a.log)
	var err error
	if a == b {
		err = errors.New("telephony: a leg cannot be bridged with itself")
	} else if _, err = mx.add(a); err == nil {
		_, err = mx.add(b)
	}
	if err != nil {
		a.log.Warn("bridge not set up", "other_call_id", b.id, "err", err)
		mx.close()
		return func() {}
	}
	mx.start()
	a.log.Debug("bridged", "other_call_id", b.id)
	return mx.close
}
