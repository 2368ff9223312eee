package telephony

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

var (
	errMixClosed  = errors.New("telephony: mix has ended")
	errInOtherMix = errors.New("telephony: leg joined another bridge or room meanwhile")
)

// mixer is what bridges and rooms are made of: every 20 ms it takes one frame of each member's
// inbound audio and sends each member the sum of the others' (not its own), plus whatever
// the member's own Play mixes in. One goroutine per mixer does all the work, so a member costs
// a jitter buffer, a few hundred additions and one RTP packet per frame.
//
// While a leg is a member, the mixer is the only sender of its audio: the leg's Play hands its
// samples to the mixer (member.play), and its taps see what the mixer sends as Outbound.
type mixer struct {
	max      int // members at most
	endBelow int // the mix ends when a departure leaves fewer members than this
	log      *slog.Logger

	mu      sync.Mutex
	members []*member
	closed  bool
	running bool
	done    chan struct{}

	// Owned by the mixing goroutine (or a test calling mix).
	list []*member
	sum  [audio.FrameSamples]int32
}

// member is one leg in a mixer.
type member struct {
	leg  *Leg
	mx   *mixer
	in   jitterBuf                                // the leg's inbound audio
	left chan struct{}                            // closed once the member has left
	emit func(frame []int16, due time.Time) error // sends the member what it hears

	own, out [audio.FrameSamples]int16 // owned by the mixing goroutine

	pmu    sync.Mutex
	prompt []int16       // a Play's audio, mixed into out frame by frame
	ppos   int           // samples of prompt taken
	pdone  chan struct{} // closed when all of prompt is taken
}

func newMixer(max, endBelow int, log *slog.Logger) *mixer {
	return &mixer{max: max, endBelow: endBelow, log: log, done: make(chan struct{})}
}

// add makes l a member. A leg in another bridge or room leaves it first.
func (mx *mixer) add(l *Leg) (*member, error) {
	l.mu.Lock()
	st := l.state
	l.mu.Unlock()
	switch st {
	case stateAnswered:
	case stateRinging, stateAnswering:
		return nil, ErrNotAnswered
	default:
		return nil, ErrCallEnded
	}
	l.leaveMix()

	m := &member{leg: l, mx: mx, left: make(chan struct{})}
	m.emit = func(frame []int16, due time.Time) error { return l.writeFrame(frame, due, m) }
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if mx.closed {
		return nil, errMixClosed
	}
	if len(mx.members) >= mx.max {
		return nil, ErrRoomFull
	}
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	switch {
	case l.ended.Load():
		return nil, ErrCallEnded
	case l.member.Load() != nil:
		return nil, errInOtherMix
	}
	l.member.Store(m)
	mx.members = append(mx.members, m)
	return m, nil
}

// start runs the mixing goroutine unless it runs or the mix has ended.
func (mx *mixer) start() {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if mx.running || mx.closed {
		return
	}
	mx.running = true
	go mx.run()
}

// remove takes m out of the mix; the mix ends if too few members remain. Idempotent.
func (mx *mixer) remove(m *member) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	i := slices.Index(mx.members, m)
	if i < 0 {
		return
	}
	mx.members = slices.Delete(mx.members, i, i+1)
	m.detach()
	if len(mx.members) < mx.endBelow {
		mx.closeLocked()
	}
}

// close ends the mix: every member leaves. Idempotent.
func (mx *mixer) close() {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	mx.closeLocked()
}

func (mx *mixer) closeLocked() {
	if mx.closed {
		return
	}
	mx.closed = true
	for _, m := range mx.members {
		m.detach()
	}
	mx.members = nil
	close(mx.done)
}

func (mx *mixer) len() int {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	return len(mx.members)
}

// detach gives the leg its own output back, then signals the departure.
func (m *member) detach() {
	l := m.leg
	l.sendMu.Lock()
	l.member.CompareAndSwap(m, nil)
	l.sendMu.Unlock()
	close(m.left)
}

// leaveMix takes the leg out of the bridge or room it is in, if any.
func (l *Leg) leaveMix() {
	if m := l.member.Load(); m != nil {
		m.mx.remove(m)
	}
}

// Mixed reports whether the leg is in a bridge or a room.
func (l *Leg) Mixed() bool { return l.member.Load() != nil }

// run mixes every 20 ms until the mix ends, on a schedule that catches up short stalls and
// restarts after long ones (like Play).
func (mx *mixer) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	due := time.Now()
	for {
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-mx.done:
				return
			}
		} else if -wait > maxLag {
			mx.skipped(-wait)
			due = time.Now()
		}
		select {
		case <-mx.done:
			return
		default:
		}
		mx.mix(due)
		due = due.Add(frameDur)
	}
}

// mix does one 20 ms round: members whose call ended leave; every other member gets the sum of
// the others' frames (an exact sum, saturated once) plus its prompt.
func (mx *mixer) mix(due time.Time) {
	mx.mu.Lock()
	mx.list = append(mx.list[:0], mx.members...)
	mx.mu.Unlock()

	clear(mx.sum[:])
	tally := newTally(time.Now())
	defer tally.add()
	for _, m := range mx.list {
		if m.leg.ended.Load() {
			continue
		}
		m.in.pull(m.own[:])
		for i, v := range m.own {
			mx.sum[i] += int32(v)
		}
	}
	for _, m := range mx.list {
		if m.leg.ended.Load() {
			mx.remove(m)
			continue
		}
		for i, v := range m.own {
			m.out[i] = audio.Saturate(mx.sum[i] - int32(v))
		}
		m.mixPrompt(m.out[:])
		err := m.emit(m.out[:], due)
		tally.result(m.leg, due, err)
		if err != nil && !errors.Is(err, ErrCallEnded) && !errors.Is(err, errDetached) && !errors.Is(err, ErrNotAnswered) {
			mx.log.Debug("mix: sending frame", "call_id", m.leg.id, "err", err)
		}
	}
	clear(mx.list) // keep no departed members alive
}

// mixPrompt adds the next frame of the member's prompt to out.
func (m *member) mixPrompt(out []int16) {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	if m.prompt == nil {
		return
	}
	rest := m.prompt[m.ppos:]
	n := min(len(rest), len(out))
	audio.MixInto(out[:n], rest[:n])
	m.ppos += n
	if m.ppos >= len(m.prompt) {
		close(m.pdone)
		m.prompt, m.pdone = nil, nil
	}
}

// play mixes pcm into what the member hears and returns how many samples were taken: all of
// them once the last frame has played out, or fewer with errDetached (the member left: the
// rest is the leg's own to send), ctx.Err() or ErrCallEnded.
func (m *member) play(ctx context.Context, pcm []int16) (int, error) {
	done := make(chan struct{})
	m.pmu.Lock()
	select {
	case <-m.left:
		m.pmu.Unlock()
		return 0, errDetached
	default:
	}
	m.prompt, m.ppos, m.pdone = pcm, 0, done
	m.pmu.Unlock()

	var err error
	select {
	case <-done:
		// The last frame went out; it plays for one more frame time.
		t := time.NewTimer(frameDur)
		defer t.Stop()
		select {
		case <-t.C:
			return len(pcm), nil
		case <-ctx.Done():
			return len(pcm), ctx.Err()
		case <-m.leg.done:
			return len(pcm), ErrCallEnded
		}
	case <-m.left:
		err = errDetached
	case <-ctx.Done():
		err = ctx.Err()
	case <-m.leg.done:
		err = ErrCallEnded
	}
	m.pmu.Lock()
	defer m.pmu.Unlock()
	if m.pdone != done { // taken in full meanwhile
		return len(pcm), err
	}
	n := m.ppos
	m.prompt, m.pdone = nil, nil
	return n, err
}
