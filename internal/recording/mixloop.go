package recording

import (
	"runtime"
	"sync"
	"time"
)

// mixLoop mixes and encodes the recordings given to it, each every interval, from one
// goroutine that runs only while it has recordings. A Recorder has one loop per processor and
// spreads its recordings over them, so a thousand calls cost a few goroutines and timers, not
// a thousand, and each recording keeps the phase of its own start (the encoding work is
// spread evenly over the interval instead of bursting on one tick).
type mixLoop struct {
	interval time.Duration
	lag      time.Duration

	mu      sync.Mutex // held while mixing, so that unschedule waits out a mix in progress
	recs    []*Recording
	running bool
}

// mixLoopTick is how often a loop looks for recordings due to be mixed: the precision of
// each recording's interval.
const mixLoopTick = 25 * time.Millisecond

func newMixLoops(interval, lag time.Duration) []*mixLoop {
	loops := make([]*mixLoop, max(runtime.GOMAXPROCS(0), 1))
	for i := range loops {
		loops[i] = &mixLoop{interval: interval, lag: lag}
	}
	return loops
}

// schedule adds rec, first mixed one interval after now.
func (m *mixLoop) schedule(rec *Recording) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.nextMix = time.Now().Add(m.interval)
	m.recs = append(m.recs, rec)
	if !m.running {
		m.running = true
		go m.run()
	}
}

// unschedule removes rec; once it returns the loop no longer touches rec.
func (m *mixLoop) unschedule(rec *Recording) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range m.recs {
		if r == rec {
			last := len(m.recs) - 1
			m.recs[i] = m.recs[last]
			m.recs[last] = nil
			m.recs = m.recs[:last]
			return
		}
	}
}

func (m *mixLoop) run() {
	t := time.NewTicker(min(mixLoopTick, m.interval))
	defer t.Stop()
	for range t.C {
		m.mu.Lock()
		if len(m.recs) == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		now := time.Now()
		for _, rec := range m.recs {
			if rec.nextMix.After(now) {
				continue
			}
			rec.mixTo(rec.pos(now.Add(-m.lag)))
			// Each recording's encoding is a fraction of a millisecond; between them the
			// goroutines that send and receive RTP get their turn (they are the ones whose
			// lateness a caller would hear).
			runtime.Gosched()
			rec.nextMix = rec.nextMix.Add(m.interval)
			if rec.nextMix.Before(now) {
				rec.nextMix = now.Add(m.interval) // fell behind: keep the interval, not the phase
			}
		}
		m.mu.Unlock()
	}
}
