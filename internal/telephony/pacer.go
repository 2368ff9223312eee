package telephony

import (
	"errors"
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

// A pacer sends the frames of the legs that send on their own (not in a bridge or room) from
// one goroutine on a shared clock. Every answered leg has a sender in one pacer from the start
// of its media to its end: it sends a frame every 20 ms, the running Play's audio or silence,
// so that a call's RTP never stops (media-inactivity timers of SBCs and trunks, NAT pinholes).
// The goroutine runs while any leg is up.
//
// Locking: mu guards only the list of senders and is never held while sending; each sender
// has its own mutex, held while its frames are sent and by Play's start and cancel. (Holding
// one lock across a tick's sends made Play wait long enough to put the mutex in starvation
// mode, whose hand-off then sent the pacer to the back of the run queue mid-tick.)
type pacer struct {
	mu      sync.Mutex
	senders []*sender
	running bool
	work    []*sender  // the run goroutine's copy of senders
	rx      *rxScratch // the run goroutine's buffers for the polled legs' RTP
}

// sender is one leg's outgoing stream: the next frame is due at due; job is the Play being
// sent, nil while nothing plays (silence). For an incoming call (in set) the pacer also takes
// the leg's incoming RTP, once per frame slot, right after sending.
type sender struct {
	mu   sync.Mutex
	leg  *Leg
	due  time.Time
	job  *playJob
	done bool     // the leg has ended: the pacer drops it
	in   *mediaIn // the leg's incoming RTP if the pacer takes it; nil: a reader goroutine does
	// frame is the one being sent; it lives here because the tap keeps nothing but takes
	// it through an interface, which would move a local array to the heap on every tick.
	frame [audio.FrameSamples]int16
}

// playJob is one Play being sent by a sender: pcm from off on.
type playJob struct {
	pcm []int16
	off int
	res chan playResult // gets exactly one result unless cancelled; buffered
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
		ps[i] = &pacer{rx: newRxScratch()}
	}
	return ps
}

// nextPacer picks the pacer of a new leg.
func nextPacer() *pacer {
	return pacers[int(pacerNext.Add(1))%len(pacers)]
}

// add starts s: its first frame is due now.
func (p *pacer) add(s *sender) {
	s.mu.Lock()
	s.due = time.Now()
	s.mu.Unlock()
	p.mu.Lock()
	p.senders = append(p.senders, s)
	if !p.running {
		p.running = true
		go p.run()
	}
	p.mu.Unlock()
}

// stop ends s: it sends nothing more, and the pacer drops it at its next tick. A Play in
// progress gets ErrCallEnded.
func (s *sender) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	if j := s.job; j != nil {
		j.res <- playResult{n: min(j.off, len(j.pcm)), err: ErrCallEnded}
		s.job = nil
	}
}

// start makes j the audio s sends from its next frame on. It returns false once s has ended.
// Plays are serialised by the leg, so no other job is running.
func (s *sender) start(j *playJob) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	s.job = j
	return true
}

// cancel stops sending j and returns how many samples of it were sent. If j had finished
// already, its result is returned instead.
func (s *sender) cancel(j *playJob) playResult {
	s.mu.Lock()
	if s.job == j {
		s.job = nil
		n := min(j.off, len(j.pcm))
		s.mu.Unlock()
		return playResult{n: n}
	}
	s.mu.Unlock()
	return <-j.res // finished meanwhile: its result is waiting
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

// run wakes every pacerTick and sends what is due, until no leg is left.
func (p *pacer) run() {
	raiseThreadPriority()
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	for now := range t.C {
		p.mu.Lock()
		p.work = append(p.work[:0], p.senders...)
		p.mu.Unlock()

		finished := 0
		tally := newTally(now)
		for _, s := range p.work {
			s.mu.Lock()
			if !s.done && s.service(now, &tally) && !s.done && s.in != nil {
				s.leg.pollMedia(s.in, p.rx)
			}
			if s.done {
				finished++
			}
			s.mu.Unlock()
		}
		clear(p.work)
		tally.add()

		p.mu.Lock()
		if finished > 0 {
			p.senders = slices.DeleteFunc(p.senders, func(s *sender) bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.done
			})
		}
		if len(p.senders) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// service sends the frames of s that are due by now (within half a tick), counting them in
// t, and reports whether any was; s.mu is held. A Play's result is delivered when its last
// frame has played out (the slot after it is due), or when sending it failed: errAttached
// when the leg joined a bridge or room (whose mixer takes over the rest), or a write error.
func (s *sender) service(now time.Time, t *frameTally) (due bool) {
	horizon := now.Add(pacerTick / 2)
	for !s.due.After(horizon) {
		due = true
		if lag := now.Sub(s.due); lag > maxLag {
			t.skipped(lag)
			s.due = now // stalled: restart the schedule rather than burst the backlog
		}
		j := s.job
		if j != nil && j.off >= len(j.pcm) {
			j.res <- playResult{n: len(j.pcm)}
			s.job, j = nil, nil
		}
		var frame []int16 // nil: silence
		if j != nil {
			n := copy(s.frame[:], j.pcm[j.off:])
			clear(s.frame[n:])
			frame = s.frame[:]
		}
		err := s.leg.writeFrame(frame, s.due, nil)
		switch {
		case err == nil:
			if !s.leg.held.Load() {
				t.sentFrame(s.due)
			}
			if j != nil {
				j.off += audio.FrameSamples
			}
		case errors.Is(err, ErrCallEnded):
			s.done = true
			if j != nil {
				j.res <- playResult{n: min(j.off, len(j.pcm)), err: err}
				s.job = nil
			}
			return due
		default:
			t.failed(err)
			if j != nil {
				j.res <- playResult{n: min(j.off, len(j.pcm)), err: err}
				s.job = nil
			}
		}
		s.due = s.due.Add(frameDur)
	}
	return due
}
