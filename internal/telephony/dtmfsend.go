package telephony

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo/sip"

	"github.com/ivrd/ivrd/internal/audio"
)

// Sending DTMF: RFC 4733 telephone-events in the leg's RTP stream (SendDigit), or SIP INFO
// with application/dtmf-relay (SendInfoDigit).
//
// An event is sent as RFC 4733 §2.5.1 describes: its packets carry the negotiated
// telephone-event payload type, the leg's SSRC and sequence numbers, and one RTP timestamp, the
// event's start; the first has the marker bit. A packet goes out every eventInterval with the
// duration so far, and the last update has the end bit and the event's whole duration and is
// sent three times. The leg's audio pauses meanwhile (what a Play had to send then is dropped,
// as during a hold), and resumes with its timestamp moved on by the event.

const (
	// eventInterval is how often an event's duration is updated (RFC 4733 §2.5.1.2: 50 ms).
	eventInterval = 50 * time.Millisecond
	// eventEndRepeats is how many times the end packet is sent (§2.5.1.4: three).
	eventEndRepeats = 3
	// eventEndGap separates the end packet's copies, so that one burst of loss does not take
	// all three.
	eventEndGap = 20 * time.Millisecond
	// eventVolume is the power level of the tone the events stand for, in -dBm0 (10: a
	// typical keypad).
	eventVolume = 10
	// MaxDigitDuration bounds one key's event: its duration field counts samples in 16 bits.
	MaxDigitDuration = 5 * time.Second
	// minDigitDuration is one update interval.
	minDigitDuration = eventInterval
)

var (
	// ErrNoTelephoneEvent: the far end did not take telephone-event in the SDP.
	ErrNoTelephoneEvent = errors.New("telephony: telephone-event was not negotiated")
	// ErrInvalidDigit: not one of 0-9 * # A-D.
	ErrInvalidDigit = errors.New("telephony: not a DTMF key")
	// ErrDigitCut: the call ended while the key was being sent, after its first packet went
	// out (so the far end may have taken it). It is an ErrCallEnded.
	ErrDigitCut = fmt.Errorf("%w during the key", ErrCallEnded)
)

// digitEvent maps a key (0-9 * # A-D, a-d) to its RFC 4733 event code.
func digitEvent(key rune) (uint8, bool) {
	const keys = "0123456789*#ABCD"
	if key >= 'a' && key <= 'd' {
		key -= 'a' - 'A'
	}
	i := strings.IndexRune(keys, key)
	if i < 0 {
		return 0, false
	}
	return uint8(i), true
}

// eventPacket is one packet of an event: when it goes out (after the event's start), what it
// says, and whether it has the marker bit.
type eventPacket struct {
	at     time.Duration
	ev     telephoneEvent
	marker bool
}

// eventPackets plans the packets of one event of length d: an update every eventInterval with
// the duration elapsed (the first with the marker), then the end packet eventEndRepeats times.
func eventPackets(code uint8, d time.Duration) []eventPacket {
	d = min(max(d, minDigitDuration), MaxDigitDuration)
	var ps []eventPacket
	for at := eventInterval; at < d; at += eventInterval {
		ps = append(ps, eventPacket{at: at, ev: telephoneEvent{Event: code, Volume: eventVolume, Duration: uint16(audio.Samples(at))}})
	}
	ps = append(ps, endPackets(code, d, false)...)
	ps[0].marker = true
	return ps
}

// SendDigit sends key to the far end as an RFC 4733 event lasting d (at least 50 ms, at most
// MaxDigitDuration), and returns once its last end packet has gone out. The leg's audio
// (a Play's, or silence) pauses meanwhile. It fails with ErrNoTelephoneEvent when the SDP
// exchange did not agree on telephone-event/8000, ErrInvalidDigit for another key,
// ErrNotAnswered, or ErrCallEnded (ErrDigitCut when the call ended after the event's first
// packet went out). If ctx ends during the event, the event ends there (its end
// packets are still sent) and ctx.Err() is returned.
func (l *Leg) SendDigit(ctx context.Context, key rune, d time.Duration) error {
	code, ok := digitEvent(key)
	if !ok {
		return fmt.Errorf("%w: %q", ErrInvalidDigit, key)
	}
	pt, err := l.telephoneEventSendPT()
	if err != nil {
		return err
	}
	return l.sendEvent(ctx, pt, code, d)
}

// telephoneEventSendPT is the payload type the far end takes telephone-event/8000 on.
func (l *Leg) telephoneEventSendPT() (uint8, error) {
	l.mu.Lock()
	med, st := l.med, l.state
	l.mu.Unlock()
	switch {
	case st < stateAnswered || med == nil:
		return 0, ErrNotAnswered
	case st > stateAnswered:
		return 0, ErrCallEnded
	}
	if sess := med.mediaSession(); sess != nil {
		for _, c := range sess.CommonCodecs() {
			if isTelephoneEvent(c.Name) && c.SampleRate == audio.Rate {
				return c.PayloadType, nil
			}
		}
	}
	return 0, ErrNoTelephoneEvent
}

// sendEvent sends one event of code with payload type pt in the leg's RTP stream.
func (l *Leg) sendEvent(ctx context.Context, pt, code uint8, d time.Duration) error {
	start, err := l.beginEvent()
	if err != nil {
		return err
	}
	plan := eventPackets(code, d)
	var cut error // ctx ended: the event ends where it is
	ctxDone := ctx.Done()
	for i := 0; i < len(plan); i++ {
		p := plan[i]
		if wait := time.Until(start.Add(p.at)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctxDone:
				t.Stop()
				cut, ctxDone = ctx.Err(), nil
				plan = append(plan[:i], endPackets(code, time.Since(start), i == 0)...)
				i--
				continue
			case <-l.done:
				t.Stop()
				l.endEvent(start, 0)
				return cutError(i, ErrCallEnded)
			}
		}
		if err := l.writeEventPacket(p, pt); err != nil {
			l.endEvent(start, 0)
			return cutError(i, err)
		}
	}
	l.endEvent(start, audio.Duration(int(plan[len(plan)-1].ev.Duration)))
	return cut
}

// cutError is err for an event that ended before its packet i: ErrDigitCut instead of
// ErrCallEnded once a packet went out.
func cutError(i int, err error) error {
	if i > 0 && errors.Is(err, ErrCallEnded) {
		return ErrDigitCut
	}
	return err
}

// endPackets are the end packets of an event cut short elapsed after its start (the first
// with the marker when nothing of the event was sent yet).
func endPackets(code uint8, elapsed time.Duration, first bool) []eventPacket {
	d := min(max(elapsed, minDigitDuration), MaxDigitDuration)
	ps := make([]eventPacket, eventEndRepeats)
	for i := range ps {
		ps[i] = eventPacket{at: elapsed + time.Duration(i)*eventEndGap,
			ev: telephoneEvent{Event: code, End: true, Volume: eventVolume, Duration: uint16(audio.Samples(d))}}
	}
	ps[0].marker = first
	return ps
}

// beginEvent stops the leg's audio and returns the event's start: now, or the end of the last
// audio frame sent when that is later. The RTP timestamp of the writer is then the start's.
func (l *Leg) beginEvent() (time.Time, error) {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if l.ended.Load() {
		return time.Time{}, ErrCallEnded
	}
	w := l.sendW.Load()
	if w == nil {
		return time.Time{}, ErrNotAnswered
	}
	if !l.sendingEvent.CompareAndSwap(false, true) {
		return time.Time{}, errors.New("telephony: a DTMF event is being sent")
	}
	now := time.Now()
	start := l.nextFrameAt
	switch {
	case start.IsZero():
		start = now
	case now.After(start):
		w.DelayTimestamp(uint32(audio.Samples(now.Sub(start))))
		start = now
	}
	l.nextFrameAt = start
	return start, nil
}

// writeEventPacket sends one packet of the event (nothing while the caller holds the call).
func (l *Leg) writeEventPacket(p eventPacket, pt uint8) error {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if l.ended.Load() {
		return ErrCallEnded
	}
	if l.held.Load() {
		return nil
	}
	w := l.sendW.Load()
	// A timestamp step of 0: every packet of the event carries its start's timestamp.
	if _, err := w.WriteSamples(appendTelephoneEvent(nil, p.ev), 0, p.marker, pt); err != nil {
		if l.ended.Load() {
			return ErrCallEnded
		}
		return fmt.Errorf("telephony: rtp write: %w", err)
	}
	return nil
}

// endEvent lets the audio go on after an event of length d that began at start: the stream's
// timestamp moves on by d, and the next frame continues from there (with a talkspurt marker).
func (l *Leg) endEvent(start time.Time, d time.Duration) {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if w := l.sendW.Load(); w != nil && d > 0 {
		w.DelayTimestamp(uint32(audio.Samples(d)))
		l.nextFrameAt = start.Add(d)
	}
	l.sendingEvent.Store(false)
}

// SIP INFO DTMF (application/dtmf-relay), as parseInfoDTMF reads it.
const contentTypeDTMFRelay = "application/dtmf-relay"

// infoDTMFBody is the application/dtmf-relay body for key lasting d.
func infoDTMFBody(key rune, d time.Duration) []byte {
	return fmt.Appendf(nil, "Signal=%c\r\nDuration=%d\r\n", key, d.Milliseconds())
}

// inDialogRequester is a dialog that sends requests within itself (a dialled call's).
type inDialogRequester interface {
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
}

// SendInfoDigit sends key to the far end of a dialled call in a SIP INFO request
// (application/dtmf-relay, Signal and Duration in milliseconds) and waits for its final
// response, which must be 2xx. It is for calls placed by Dial; incoming calls return an
// error.
func (l *Leg) SendInfoDigit(ctx context.Context, key rune, d time.Duration) error {
	if _, ok := digitEvent(key); !ok {
		return fmt.Errorf("%w: %q", ErrInvalidDigit, key)
	}
	if key >= 'a' && key <= 'd' {
		key -= 'a' - 'A'
	}
	cd, ok := l.dlg.(*diago.DialogClientSession)
	if !ok || l.inc != nil {
		return errors.New("telephony: SIP INFO DTMF is sent on dialled calls only")
	}
	l.mu.Lock()
	st := l.state
	l.mu.Unlock()
	if st != stateAnswered {
		return ErrCallEnded
	}
	var dlg inDialogRequester = cd
	target := cd.InviteRequest.Recipient
	if c := cd.InviteResponse.Contact(); c != nil {
		target = c.Address
	}
	req := sip.NewRequest(sip.INFO, *target.Clone())
	req.AppendHeader(sip.NewHeader(hdrContentType, contentTypeDTMFRelay))
	req.SetBody(infoDTMFBody(key, d))
	res, err := dlg.Do(ctx, req)
	if err != nil {
		if l.ended.Load() {
			return ErrCallEnded
		}
		return fmt.Errorf("telephony: INFO: %w", err)
	}
	if !res.IsSuccess() {
		return &ResponseError{Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}
