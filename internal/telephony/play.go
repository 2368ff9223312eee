package telephony

import (
	"context"
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

// Play sends pcm (8 kHz mono) to the caller as the negotiated G.711 in 20 ms RTP frames, paced
// in real time; a last partial frame is padded with silence. Each frame sent also goes to the
// tap's Outbound. Play returns when the last frame has played out, when ctx is done
// (ctx.Err()), or when the call ends (ErrCallEnded). Plays are serialised: a second Play waits
// for the first. Plays that follow each other without a gap form one continuous RTP stream;
// after a pause the RTP timestamp jumps by the pause and the marker bit is set. Between Plays
// nothing is sent.
func (l *Leg) Play(ctx context.Context, pcm []int16) error {
	l.mu.Lock()
	st := l.state
	med := l.med
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
	if len(pcm) == 0 {
		return nil
	}

	w := med.RTPPacketWriter
	pt := uint8(l.audioPT.Load())
	encode := audio.EncodeUlaw
	if pt == ptPCMA {
		encode = audio.EncodeAlaw
	}

	now := time.Now()
	start := l.nextFrameAt
	marker := false
	if start.IsZero() || now.Sub(start) > frameDur {
		// A new talkspurt: let the RTP clock account for the silence since the last one.
		if !start.IsZero() {
			w.DelayTimestamp(uint32(audio.Samples(now.Sub(start))))
		}
		start, marker = now, true
	}
	// Else continue the previous stream seamlessly: its next frame is just due.

	frame := make([]int16, audio.FrameSamples)
	payload := make([]byte, 0, audio.FrameSamples)
	timer := time.NewTimer(time.Hour)
	timer.Stop() // since Go 1.23 a stopped timer's channel holds no stale tick
	defer timer.Stop()

	due := start
	for off := 0; off < len(pcm); off += audio.FrameSamples {
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			case <-l.done:
				return ErrCallEnded
			}
		} else if -wait > maxLag {
			w.DelayTimestamp(uint32(audio.Samples(-wait)))
			due, marker = time.Now(), true
		}
		n := copy(frame, pcm[off:])
		clear(frame[n:])
		payload = encode(payload[:0], frame)

		l.sendMu.Lock()
		if l.ended.Load() {
			l.sendMu.Unlock()
			return ErrCallEnded
		}
		_, err := w.WriteSamples(payload, audio.FrameSamples, marker, pt)
		if err == nil {
			l.outbound(frame, time.Now())
		}
		l.sendMu.Unlock()
		if err != nil {
			if l.ended.Load() {
				return ErrCallEnded
			}
			return fmt.Errorf("telephony: rtp write: %w", err)
		}
		marker = false
		due = due.Add(frameDur)
		l.nextFrameAt = due
	}

	// Return when the last frame has played out at the far end's pace.
	if wait := time.Until(due); wait > 0 {
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return ErrCallEnded
		}
	}
	if l.ended.Load() {
		return ErrCallEnded
	}
	return nil
}
