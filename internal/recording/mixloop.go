package recording

import (
	"runtime"
	"sync"
	"time"
)

// mixLoop schedules the mixing of the recordings given to it, each every interval. One
// goroutine, running only while the loop has recordings, wakes every mixLoopTick and starts a
// short goroutine for each recording that is due; a recording keeps the phase of its own
// start, so the work is spread evenly over the interval. A mix hands its PCM to the
// recording's AsyncMP3Encoder, which waits when that encoder's queue is full (the encoding
// threads are behind): in its own goroutine such a wait holds up that recording only, not
// the others of the loop. A Recorder has one loop per processor.
type mixLoop struct {
	interval time.Duration
	lag      time.Duration

	mu      sync.Mutex
	recs    []*Recording
	running bool
}

// mixLoopTick is how often a loop looks for recordings due to be mixed: the precision of
// each recording's interval.
const mixLoopTick = 5 * time.Millisecond

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

// unschedule removes rec and waits for a mix of it in progress; once it returns the loop no
// longer touches rec.
func (m *mixLoop) unschedule(rec *Recording) {
	m.mu.Lock()
	defer func() {
		m.mu.Unlock()
		rec.mixMu.Lock() // a mix that was started finishes first
		rec.unscheduled = true
		rec.mixMu.Unlock()
	}()
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
			rec.nextMix = rec.nextMix.Add(m.interval)
			if rec.nextMix.Before(now) {
				rec.nextMix = now.Add(m.interval) // fell behind: keep the interval, not the phase
			}
			if rec.mixing.CompareAndSwap(false, true) { // else its last mix is still running
				go m.mix(rec)
			}
		}
		m.mu.Unlock()
	}
}

// mix mixes rec up to the wall clock less the lag, unless Finish has taken it over.
func (m *mixLoop) mix(rec *Recording) {
	defer rec.mixing.Store(false)
	rec.mixMu.Lock()
	defer rec.mixMu.Unlock()
	if !rec.unscheduled {
		rec.mixTo(rec.pos(time.Now().Add(-m.lag)))
	}
}
