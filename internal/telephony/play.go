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
// (ctx.Err()), or when the call ends (ErrCallEnded). Plays are serialised: a second Play waits
// for the first. Plays that follow each other without a gap form one continuous RTP stream;
// after a pause the RTP timestamp jumps by the pause and the marker bit is set. Between Plays
// nothing is sent.
//
// While the leg is in a bridge or room, Play mixes pcm into what the leg hears from the others
// (they do not hear it), frame by frame as the mixer ticks. A Play that is running when the leg
// joins or leaves carries on in the new mode where it was.
func (l *Leg) Play(ctx context.Context, pcm []int16) error {
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

// playDirect sends pcm as its own RTP stream, paced by the leg's pacer, and returns how many
// samples it sent. It stops with errAttached when the leg joins a mix.
func (l *Leg) playDirect(ctx context.Context, pcm []int16) (int, error) {
	now := time.Now()
	l.sendMu.Lock()
	due := l.nextFrameAt
	l.sendMu.Unlock()
	if due.IsZero() || now.Sub(due) > frameDur {
		// A new talkspurt (writeFrame lets the RTP clock account for the silence).
		due = now
	}
	// Else continue the previous stream seamlessly: its next frame is just due.

	s := &outStream{leg: l, pcm: pcm, due: due, res: make(chan playResult, 1)}
	l.pacer.add(s)
	select {
	case r := <-s.res:
		return r.n, r.err
	case <-ctx.Done():
		r := l.pacer.remove(s)
		if r.err != nil {
			return r.n, r.err
		}
		return r.n, ctx.Err()
	case <-l.done:
		return l.pacer.remove(s).n, ErrCallEnded
	}
}

// writeFrame sends one 20 ms frame, due at due, as the negotiated G.711 and gives it to the
// tap's Outbound. from is the mix sending it, nil for Play: a frame from a sender that no
// longer owns the leg's output is refused (errAttached for Play, errDetached for a mix).
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
	med := l.sendMed.Load()
	if med == nil {
		return ErrNotAnswered
	}
	w := med.RTPPacketWriter
	pt := uint8(l.audioPT.Load())
	encode := audio.EncodeUlaw
	if pt == ptPCMA {
		encode = audio.EncodeAlaw
	}
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
	l.payload = encode(l.payload[:0], frame)
	if _, err := w.WriteSamples(l.payload, audio.FrameSamples, marker, pt); err != nil {
		if l.ended.Load() {
			return ErrCallEnded
		}
		return fmt.Errorf("telephony: rtp write: %w", err)
	}
	l.nextFrameAt = due.Add(frameDur)
	l.outbound(frame, time.Now())
	return nil
}
