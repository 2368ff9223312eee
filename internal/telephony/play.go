package telephony

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

const (
	frameDur = 20 * time.Millisecond
	// maxLag is how far sending may fall behind its schedule (a stalled process) before the
	// schedule restarts from now instead of bursting the backlog.
	maxLag = 200 * time.Millisecond
)

var (
	// errAttached: the leg joined a bridge or room, whose mixer now sends its audio.
	errAttached = errors.New("telephony: leg is mixed")
	// errDetached: the leg left the bridge or room; it sends its own audio again.
	errDetached = errors.New("telephony: leg left the mix")
)

// Play sends pcm (8 kHz mono) to the caller as the negotiated G.711 in 20 ms RTP frames, paced
// in real time; a last partial frame is padded with silence. Each frame sent also goes to the
// tap's Outbound. Play returns when the last frame has played out, when ctx is done
// (ctx.Err()), or when the call ends (ErrCallEnded, once Done is closed: a caller that sees
// ErrCallEnded can rely on the call being over). Plays are serialised: a second Play waits for
// the first.
//
// From the answer to the hang-up a leg sends a frame every 20 ms in one continuous RTP stream:
// a Play's audio starts at the stream's next frame, and while nothing plays the frames are
// silence (which the tap does not get: a recording fills its gaps with silence itself). While
// the caller has put the call on hold (a=sendonly, a=inactive, a=recvonly or c=0.0.0.0)
// nothing is sent, and a Play runs its course unheard.
//
// While the leg is in a bridge or room, Play mixes pcm into what the leg hears from the others
// (they do not hear it), frame by frame as the mixer ticks. A Play that is running when the leg
// joins or leaves carries on in the new mode where it was.
func (l *Leg) Play(ctx context.Context, pcm []int16) error {
	err := l.play(ctx, pcm)
	if errors.Is(err, ErrCallEnded) {
		<-l.done // the end is under way (media closing, BYE being sent): let it complete
	}
	return err
}

func (l *Leg) play(ctx context.Context, pcm []int16) error {
	l.mu.Lock()
	st := l.state
	l.mu.Unlock()
	switch st {
	case stateAnswered:
	case stateRinging, stateAnswering:
		return ErrNotAnswered
	default:
		return ErrCallEnded
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case l.playSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return ErrCallEnded
	}
	defer func() { <-l.playSem }()

	for len(pcm) > 0 {
		var n int
		var err error
		if m := l.member.Load(); m != nil {
			n, err = m.play(ctx, pcm)
		} else {
			n, err = l.playDirect(ctx, pcm)
		}
		pcm = pcm[n:]
		if !errors.Is(err, errAttached) && !errors.Is(err, errDetached) {
			return err
		}
	}
	if l.ended.Load() {
		return ErrCallEnded
	}
	return nil
}

// playDirect has the leg's sender send pcm and returns how many samples it sent. It stops
// with errAttached when the leg joins a mix.
func (l *Leg) playDirect(ctx context.Context, pcm []int16) (int, error) {
	l.mu.Lock()
	snd := l.snd
	l.mu.Unlock()
	j := &playJob{pcm: pcm, res: make(chan playResult, 1)}
	if snd == nil || !snd.start(j) {
		return 0, ErrCallEnded
	}
	select {
	case r := <-j.res:
		return r.n, r.err
	case <-ctx.Done():
		r := snd.cancel(j)
		if r.err != nil {
			return r.n, r.err
		}
		return r.n, ctx.Err()
	case <-l.done:
		return snd.cancel(j).n, ErrCallEnded
	}
}

// writeFrame sends one 20 ms frame, due at due, as the negotiated G.711 and gives it to the
// tap's Outbound; a nil frame is silence, which the tap does not get. from is the mix sending
// it, nil for the leg's own sender: a frame from a sender that no longer owns the leg's output
// is refused (errAttached for the leg's sender, errDetached for a mix). While the caller holds
// the call nothing is sent (and nil is returned).
//
// The leg keeps one RTP stream whatever sends into it: a frame due later than the stream's next
// frame starts a talkspurt (the RTP timestamp jumps by the gap, marker set); one due earlier
// (an overlap at a hand-over) follows the previous frame directly.
func (l *Leg) writeFrame(frame []int16, due time.Time, from *member) error {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if l.ended.Load() {
		return ErrCallEnded
	}
	if cur := l.member.Load(); cur != from {
		if from == nil {
			return errAttached
		}
		return errDetached
	}
	w := l.sendW.Load()
	if w == nil {
		return ErrNotAnswered
	}
	if l.held.Load() || l.sendingEvent.Load() {
		// On resume (or after the DTMF event) the RTP timestamp jumps by the gap (marker set).
		return nil
	}
	pt := uint8(l.audioPT.Load())
	marker := false
	next := l.nextFrameAt
	switch {
	case next.IsZero():
		marker = true
	case due.After(next):
		w.DelayTimestamp(uint32(audio.Samples(due.Sub(next))))
		marker = true
	case due.Before(next):
		due = next
	}
	var payload []byte
	switch {
	case frame == nil && pt == ptPCMA:
		payload = silenceAlaw[:]
	case frame == nil:
		payload = silenceUlaw[:]
	case pt == ptPCMA:
		l.payload = audio.EncodeAlaw(l.payload[:0], frame)
		payload = l.payload
	default:
		l.payload = audio.EncodeUlaw(l.payload[:0], frame)
		payload = l.payload
	}
	if _, err := w.WriteSamples(payload, audio.FrameSamples, marker, pt); err != nil {
		if l.ended.Load() {
			return ErrCallEnded
		}
		return fmt.Errorf("telephony: rtp write: %w", err)
	}
	l.nextFrameAt = due.Add(frameDur)
	if frame != nil {
		l.outbound(frame, time.Now())
	}
	return nil
}

// One 20 ms frame of silence in each G.711 law.
var silenceUlaw, silenceAlaw = func() (u, a [audio.FrameSamples]byte) {
	var zero [audio.FrameSamples]int16
	copy(u[:], audio.EncodeUlaw(nil, zero[:]))
	copy(a[:], audio.EncodeAlaw(nil, zero[:]))
	return u, a
}()
