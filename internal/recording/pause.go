package recording

import (
	"math"
	"time"
)

// pause is a paused part of a recording's timeline, [from, to) in positions (samples since
// the start); to is math.MaxInt64 while the recording is paused. skip leaves the part out of
// the file; otherwise it is silence there.
type pause struct {
	from, to int64
	skip     bool
}

// pausedPart is the paused part [from, to) of a chunk being mixed, in samples from its start.
type pausedPart struct {
	from, to int
	skip     bool
}

// Pause stops taking the call's audio from wall-clock time at on, until Resume: the paused
// part of the timeline is silence in the file, or with skip is left out of it (the audio
// after Resume follows the audio before Pause). It applies to audio that arrives late for
// times after at as well, since it takes effect where the mixer writes the file; if the mixer
// has already written past at, the pause starts where it is. Pausing a paused recording
// changes nothing (the first Pause's skip holds) and returns false, as does pausing a
// finished one.
func (rec *Recording) Pause(at time.Time, skip bool) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.closed || rec.pausedLocked() {
		return false
	}
	rec.pauses = append(rec.pauses, pause{from: max(rec.pos(at), rec.mixed), to: math.MaxInt64, skip: skip})
	return true
}

// Resume takes the call's audio again from wall-clock time at on. It returns false, changing
// nothing, when the recording is not paused.
func (rec *Recording) Resume(at time.Time) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !rec.pausedLocked() {
		return false
	}
	p := &rec.pauses[len(rec.pauses)-1]
	p.to = max(rec.pos(at), p.from)
	return true
}

// Paused reports whether the recording is paused.
func (rec *Recording) Paused() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.pausedLocked()
}

func (rec *Recording) pausedLocked() bool {
	n := len(rec.pauses)
	return n > 0 && rec.pauses[n-1].to == math.MaxInt64
}

// pausedIn appends to parts the paused parts of [from, to) and forgets the pauses that end
// before to (the mixer will not come back to them). Caller holds rec.mu.
func (rec *Recording) pausedIn(parts []pausedPart, from, to int64) []pausedPart {
	keep := rec.pauses[:0]
	for _, p := range rec.pauses {
		if a, b := max(p.from, from), min(p.to, to); a < b {
			parts = append(parts, pausedPart{from: int(a - from), to: int(b - from), skip: p.skip})
		}
		if p.to > to {
			keep = append(keep, p)
		}
	}
	rec.pauses = keep
	return parts
}

// applyPauses silences or removes the paused parts of pcm (frames of channels samples; parts in
// frames, sorted and apart) and returns what remains, in pcm's own storage.
func applyPauses(pcm []int16, channels int, parts []pausedPart) []int16 {
	w, prev := 0, 0 // frames written, frames consumed
	keep := func(a, b int) {
		copy(pcm[w*channels:], pcm[a*channels:b*channels])
		w += b - a
	}
	for _, c := range parts {
		keep(prev, c.from)
		if !c.skip {
			clear(pcm[w*channels : (w+c.to-c.from)*channels])
			w += c.to - c.from
		}
		prev = c.to
	}
	keep(prev, len(pcm)/channels)
	return pcm[:w*channels]
}
