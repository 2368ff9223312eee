package telephony

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// pacerTick is how often a pacer wakes. Every frame due within half a tick of the wake-up is
// sent then, so frames leave at most pacerTick/2 early or late of their 20 ms schedule
// (plus scheduling delay), and a thousand playing calls cost 200 wake-ups a second instead
// of 50,000 timer firings and goroutine switches.
const pacerTick = 5 * time.Millisecond

// A pacer sends the frames of the legs that Play on their own (not in a bridge or room) from
// one goroutine on a shared clock. The goroutine runs only while something plays.
type pacer struct {
	mu      sync.Mutex
	streams []*outStream
	running bool
	frame   [audio.FrameSamples]int16 // scratch, used under mu
}

// outStream is one Play being sent: pcm from off on, next frame due at due.
type outStream struct {
	leg *Leg
	pcm []int16
	off int
	due time.Time
	res chan playResult // gets exactly one result; buffered
}

type playResult struct {
	n   int
	err error
}

// pacers: one per processor, so that sending (a system call per frame) uses every core. Legs
// are spread over them round robin.
var (
	pacers    = newPacers(runtime.GOMAXPROCS(0))
	pacerNext atomic.Uint32
)

func newPacers(n int) []*pacer {
	ps := make([]*pacer, max(n, 1))
	for i := range ps {
		ps[i] = &pacer{}
	}
	return ps
}

// nextPacer picks the pacer of a new leg.
func nextPacer() *pacer {
	return pacers[int(pacerNext.Add(1))%len(pacers)]
}

// add starts sending s.
func (p *pacer) add(s *outStream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Frames already due go out now rather than at the next tick.
	if p.serviceLocked(s, time.Now()) {
		return
	}
	p.streams = append(p.streams, s)
	if !p.running {
		p.running = true
		go p.run()
	}
}

// remove stops sending s and returns how many samples of it were sent. If s had finished
// already, its result is returned instead.
func (p *pacer) remove(s *outStream) playResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.streams {
		if x == s {
			p.dropLocked(i)
			return playResult{n: min(s.off, len(s.pcm))}
		}
	}
	return <-s.res // finished meanwhile: its result is waiting
}

func (p *pacer) dropLocked(i int) {
	last := len(p.streams) - 1
	p.streams[i] = p.streams[last]
	p.streams[last] = nil
	p.streams = p.streams[:last]
}

// run wakes every pacerTick and sends what is due, until nothing is left to send.
func (p *pacer) run() {
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	for now := range t.C {
		p.mu.Lock()
		for i := 0; i < len(p.streams); {
			if p.serviceLocked(p.streams[i], now) {
				p.dropLocked(i)
				continue
			}
			i++
		}
		if len(p.streams) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// serviceLocked sends the frames of s that are due by now (within half a tick) and reports
// whether s is finished: its last frame has played out, or sending failed. A finished stream
// has its result delivered; the caller removes it.
func (p *pacer) serviceLocked(s *outStream, now time.Time) bool {
	horizon := now.Add(pacerTick / 2)
	for s.off < len(s.pcm) && !s.due.After(horizon) {
		if now.Sub(s.due) > maxLag {
			s.due = now // stalled: restart the schedule rather than burst the backlog
		}
		n := copy(p.frame[:], s.pcm[s.off:])
		clear(p.frame[n:])
		if err := s.leg.writeFrame(p.frame[:], s.due, nil); err != nil {
			s.res <- playResult{n: s.off, err: err}
			return true
		}
		s.off += audio.FrameSamples
		s.due = s.due.Add(frameDur)
	}
	if s.off >= len(s.pcm) && !s.due.After(horizon) {
		// The last frame has played out at the far end's pace.
		s.res <- playResult{n: len(s.pcm)}
		return true
	}
	return false
}
