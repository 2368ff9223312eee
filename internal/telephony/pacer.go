package telephony

import (
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
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
//
// Locking: mu guards only the list of streams and is never held while sending; each stream
// has its own mutex, held while its frames are sent and by remove. (Holding one lock across
// a tick's sends made Play's add wait long enough to put the mutex in starvation mode, whose
// hand-off then sent the pacer to the back of the run queue mid-tick.)
type pacer struct {
	mu      sync.Mutex
	streams []*outStream
	running bool
	work    []*outStream // the run goroutine's copy of streams
}

// outStream is one Play being sent: pcm from off on, next frame due at due.
type outStream struct {
	mu   sync.Mutex
	leg  *Leg
	pcm  []int16
	off  int
	due  time.Time
	done bool            // finished, failed or removed: the pacer drops it
	res  chan playResult // gets exactly one result unless removed; buffered
	// frame is the one being sent; it lives here because the tap keeps nothing but takes
	// it through an interface, which would move a local array to the heap on every tick.
	frame [audio.FrameSamples]int16
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

// add starts sending s; frames already due go out now rather than at the next tick.
func (p *pacer) add(s *outStream) {
	s.mu.Lock()
	s.service(time.Now())
	done := s.done
	s.mu.Unlock()
	if done {
		return
	}
	p.mu.Lock()
	p.streams = append(p.streams, s)
	if !p.running {
		p.running = true
		go p.run()
	}
	p.mu.Unlock()
}

// remove stops sending s and returns how many samples of it were sent. If s had finished
// already, its result is returned instead.
func (p *pacer) remove(s *outStream) playResult {
	s.mu.Lock()
	if !s.done {
		s.done = true // the pacer drops it at its next tick
		n := min(s.off, len(s.pcm))
		s.mu.Unlock()
		return playResult{n: n}
	}
	s.mu.Unlock()
	return <-s.res // finished meanwhile: its result is waiting
}

// PacerNice is the niceness ivrd asks for the threads that send RTP (it needs CAP_SYS_NICE,
// e.g. running as root or with systemd's AmbientCapabilities=CAP_SYS_NICE; without it they
// run at the process's own priority). When the machine is short of CPU the kernel then
// keeps the 20 ms sending schedule and delays other work: in-process work that can wait
// (MP3 encoding runs at audio.EncoderNice) and other processes.
const PacerNice = -10

var pacerNiceOnce sync.Once

// raiseThreadPriority locks the calling goroutine to its thread for good (the thread ends
// with the goroutine) and asks for PacerNice on it.
func raiseThreadPriority() {
	runtime.LockOSThread()
	err := syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), PacerNice)
	if err != nil {
		pacerNiceOnce.Do(func() {
			slog.Debug("RTP sending runs at normal priority", "nice", PacerNice, "err", err)
		})
	}
}

// run wakes every pacerTick and sends what is due, until nothing is left to send.
func (p *pacer) run() {
	raiseThreadPriority()
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	for now := range t.C {
		p.mu.Lock()
		p.work = append(p.work[:0], p.streams...)
		p.mu.Unlock()

		finished := 0
		for _, s := range p.work {
			s.mu.Lock()
			if !s.done {
				s.service(now)
			}
			if s.done {
				finished++
			}
			s.mu.Unlock()
		}
		clear(p.work)

		p.mu.Lock()
		if finished > 0 {
			p.streams = slices.DeleteFunc(p.streams, func(s *outStream) bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.done
			})
		}
		if len(p.streams) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// service sends the frames of s that are due by now (within half a tick); s.mu is held. When
// s is finished (its last frame has played out, or sending failed) it delivers the result
// and sets done.
func (s *outStream) service(now time.Time) {
	frame := &s.frame
	horizon := now.Add(pacerTick / 2)
	for s.off < len(s.pcm) && !s.due.After(horizon) {
		if now.Sub(s.due) > maxLag {
			s.due = now // stalled: restart the schedule rather than burst the backlog
		}
		n := copy(frame[:], s.pcm[s.off:])
		clear(frame[n:])
		if err := s.leg.writeFrame(frame[:], s.due, nil); err != nil {
			s.res <- playResult{n: s.off, err: err}
			s.done = true
			return
		}
		s.off += audio.FrameSamples
		s.due = s.due.Add(frameDur)
	}
	if s.off >= len(s.pcm) && !s.due.After(horizon) {
		// The last frame has played out at the far end's pace.
		s.res <- playResult{n: len(s.pcm)}
		s.done = true
	}
}
