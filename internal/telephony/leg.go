package telephony

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/calllog"
)

var (
	// ErrCallEnded is returned when the call has ended, whichever side ended it.
	ErrCallEnded = errors.New("telephony: call ended")
	// ErrNotAnswered is returned by Play on a leg that has not been answered.
	ErrNotAnswered = errors.New("telephony: call not answered")
	// ErrAnswered is returned by Reject on a leg that is already answered.
	ErrAnswered = errors.New("telephony: call already answered")
)

// byeTimeout bounds how long Hangup waits for the caller to confirm our BYE.
const byeTimeout = 5 * time.Second

type legState uint8

const (
	stateRinging   legState = iota // INVITE received, 180 sent
	stateAnswering                 // 200 OK sent or being sent, waiting for ACK
	stateAnswered                  // ACK received, media running
	stateRejecting                 // final error response being sent
	stateHangingUp                 // BYE being sent
	stateEnded
)

// dialog is what a leg needs of its SIP dialog, incoming or outgoing.
type dialog interface {
	Context() context.Context // ends when the dialog ends
	Bye(ctx context.Context) error
}

// Leg is one call: incoming (from Serve) or outgoing (from Dial). It satisfies ivr.Call. All
// methods are safe for concurrent use.
type Leg struct {
	dlg dialog
	inc *incoming // incoming calls only
	log *slog.Logger
	tag calllog.Tag // the session the call belongs to, on every line of log once named

	id, from, to string
	toHeader     string // the To header's user, normalised like to

	mu          sync.Mutex
	state       legState
	answerDone  chan struct{} // closed when the answer attempt finished; answerErr is its result
	answerErr   error
	med         legMedia
	snd         *sender       // sends the leg's own audio (and silence) from the media's start
	readerDone  chan struct{} // closed when the media reader goroutine exited; nil when the pacer reads
	endedAt     time.Time
	remoteEnd   bool     // the other party ended the call (BYE, CANCEL), not ivrd
	afterEnd    []func() // run once the leg has ended
	afterEndRan bool     // finish has taken afterEnd: later ones run at once

	done  chan struct{}
	ended atomic.Bool

	// Negotiated RTP payload types; dtmfPT is -1 when telephone-event was not negotiated.
	audioPT atomic.Int32
	dtmfPT  atomic.Int32

	tapMu sync.RWMutex // held for reading around every tap call
	tap   audio.Tap

	sendMu      sync.Mutex                            // held around sending one frame; finish takes it to fence Play off
	playSem     chan struct{}                         // one Play at a time
	pacer       *pacer                                // sends the leg's own frames
	nextFrameAt time.Time                             // when the frame after the last one sent is due; guarded by sendMu
	payload     []byte                                // encoding buffer; guarded by sendMu
	sendW       atomic.Pointer[media.RTPPacketWriter] // set once the media runs
	held        atomic.Bool                           // the caller holds the call: send nothing
	// sendingEvent is set while SendDigit sends an RFC 4733 event: the audio pauses.
	sendingEvent atomic.Bool

	// member is set while the leg is in a bridge or room: its mixer then sends all its audio.
	// It changes only under sendMu.
	member atomic.Pointer[member]

	onDTMF      atomic.Pointer[func(rune)]
	digits      chan rune
	dispatching atomic.Bool // a dispatchDigits goroutine is running
}

func newLeg(in *incoming, log *slog.Logger) *Leg {
	req := in.d.InviteRequest
	l := &Leg{
		dlg:     in,
		inc:     in,
		id:      req.CallID().Value(),
		to:      normalizeNumber(unescapeUser(req.Recipient.User)),
		done:    make(chan struct{}),
		playSem: make(chan struct{}, 1),
		pacer:   nextPacer(),
		digits:  make(chan rune, 32),
	}
	if f := req.From(); f != nil {
		l.from = normalizeNumber(unescapeUser(f.Address.User))
	}
	if t := req.To(); t != nil {
		l.toHeader = normalizeNumber(t.Address.User)
	}
	l.log = l.tag.Logger(log.With("call_id", l.id))
	l.dtmfPT.Store(-1)
	return l
}

// normalizeNumber returns user as E.164 with a leading '+' when it is all digits, else as is.
func normalizeNumber(user string) string {
	if user == "" {
		return user
	}
	for _, c := range user {
		if c < '0' || c > '9' {
			return user
		}
	}
	return "+" + user
}

// ID returns the SIP Call-ID.
func (l *Leg) ID() string { return l.id }

// From returns the caller: for an incoming call the From user part, percent-decoded, with
// '+' prepended when it is all digits; for a dialled call the caller id given to Dial.
func (l *Leg) From() string { return l.from }

// To returns the dialled number: for an incoming call the Request-URI user part, decoded and
// normalised like From (%2B6561234567 is +6561234567); for a dialled call the destination
// given to Dial.
func (l *Leg) To() string { return l.to }

// ToHeader returns the To header's user part of an incoming call, normalised like To: where a
// registration-based provider puts the dialled number when its Request-URI carries the
// registered user. For a dialled call it is To.
func (l *Leg) ToHeader() string { return l.toHeader }

// Done is closed when the call has ended, whichever side ended it. Once it is closed the tap
// gets no more audio and OnDTMF no more digits.
func (l *Leg) Done() <-chan struct{} { return l.done }

// EndedAt returns when the call ended; zero while it has not.
func (l *Leg) EndedAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endedAt
}

// SetTap makes t receive both directions of audio from now on; nil stops. When SetTap returns
// the previous tap gets no more calls. A tap must not call SetTap from inside its methods.
func (l *Leg) SetTap(t audio.Tap) {
	l.tapMu.Lock()
	l.tap = t
	l.tapMu.Unlock()
}

// OnDTMF sets the function called with each key the caller presses (RFC 4733 events and SIP
// INFO). It is called from one goroutine per leg, in order, and may call any Leg method. Keys
// that arrive while no function is set are dropped.
func (l *Leg) OnDTMF(f func(digit rune)) {
	if f == nil {
		l.onDTMF.Store(nil)
		return
	}
	l.onDTMF.Store(&f)
}

// Answer accepts the ringing call: 200 OK with SDP (ivrd's answer to the caller's offer of
// PCMU or PCMA, or for an INVITE without SDP ivrd's offer of PCMU, PCMA and telephone-event,
// which the ACK answers), then waits for the ACK and starts the media. It is idempotent; concurrent calls share one answer.
// A dialled call is answered from the start.
// If ctx ends first Answer returns ctx.Err() and the answer goes on in the background.
func (l *Leg) Answer(ctx context.Context) error {
	l.mu.Lock()
	switch l.state {
	case stateAnswered:
		l.mu.Unlock()
		return nil
	case stateRinging:
		l.state = stateAnswering
		l.answerDone = make(chan struct{})
		go l.answer()
	case stateAnswering:
	default:
		l.mu.Unlock()
		return ErrCallEnded
	}
	ch := l.answerDone
	l.mu.Unlock()
	select {
	case <-ch:
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.answerErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answer negotiates the media and sends 200 OK, then waits for the caller's ACK (at most
// 64*T1).
func (l *Leg) answer() {
	med, err := l.inc.answer(l.log)
	if err != nil {
		if med != nil {
			_ = med.Close()
		}
		l.answerFailed(err)
		return
	}
	l.mu.Lock()
	if l.state != stateAnswering { // ended meanwhile
		l.answerErr = ErrCallEnded
		close(l.answerDone)
		l.mu.Unlock()
		_ = med.Close()
		return
	}
	l.startRTPLocked(med)
	l.held.Store(!med.remoteDesc().sending())
	close(l.answerDone)
	l.mu.Unlock()
	l.log.Debug("answered", "audio_pt", l.audioPT.Load(), "dtmf_pt", l.dtmfPT.Load(), "rtp", med.localAddr())
}

// startMediaLocked takes med, negotiated by diago, as the leg's media and starts reading it;
// l.mu is held.
func (l *Leg) startMediaLocked(med *diago.DialogMedia) {
	l.startRTPLocked(diagoMedia{med})
}

// startRTPLocked takes med as the leg's media: it starts reading it and sending the leg's
// own audio (silence until a Play); l.mu is held. An incoming call's RTP is read by its
// pacer (a polled socket); a dialled call's, on diago's socket, by a goroutine of its own.
func (l *Leg) startRTPLocked(med legMedia) {
	l.med = med
	l.setCodecs(med.mediaSession())
	w := med.packetWriter()
	w.ClockDisable() // we pace ourselves; its ticker would only cost CPU
	l.sendW.Store(w)
	in := &mediaIn{r: med.packetReader()}
	l.snd = &sender{leg: l}
	if cm, ok := med.(*callMedia); ok {
		in.sock = cm.rtp
		l.snd.in = in
	} else {
		l.readerDone = make(chan struct{})
		go l.readMedia(in, l.readerDone)
	}
	l.state = stateAnswered
	l.pacer.add(l.snd)
}

func (l *Leg) answerFailed(err error) {
	l.mu.Lock()
	mine := l.state == stateAnswering
	if mine {
		l.state = stateHangingUp
	}
	ended := !mine || l.dlg.Context().Err() != nil
	if ended {
		err = ErrCallEnded
	} else {
		err = fmt.Errorf("telephony: answer: %w", err)
	}
	l.answerErr = err
	close(l.answerDone)
	l.mu.Unlock()
	if !ended {
		l.log.Warn("answer failed", "err", err)
		if l.inc.d.LoadState() < sip.DialogStateEstablished {
			// No 200 went out: the offer could not be taken, or no RTP port was free.
			code := sip.StatusNotAcceptableHere
			if errors.Is(err, errNoPorts) {
				code = sip.StatusServiceUnavailable
			}
			_ = l.inc.d.Respond(code, reasonPhrase(code), nil)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
			_ = l.dlg.Bye(ctx)
			cancel()
		}
	}
	l.finish()
}

// Reject refuses the ringing call with a final SIP status (300..699, e.g. 404, 486, 603). It
// returns ErrAnswered once the call is answered and ErrCallEnded once it has ended.
func (l *Leg) Reject(code int) error {
	if code < 300 || code > 699 {
		return fmt.Errorf("telephony: reject: invalid final status %d", code)
	}
	l.mu.Lock()
	switch l.state {
	case stateRinging:
	case stateAnswering, stateAnswered:
		l.mu.Unlock()
		return ErrAnswered
	default:
		l.mu.Unlock()
		return ErrCallEnded
	}
	l.state = stateRejecting
	l.mu.Unlock()

	// sipgo sends the response and waits for the caller's ACK (or the transaction's end).
	err := l.inc.d.Respond(code, reasonPhrase(code), nil)
	cancelled := l.dlg.Context().Err() != nil && err != nil
	l.finish()
	switch {
	case cancelled:
		return ErrCallEnded
	case err != nil:
		return fmt.Errorf("telephony: reject %d: %w", code, err)
	}
	return nil
}

// Hangup ends the call from our side: BYE once answered, 603 Decline while ringing. It is
// idempotent and returns when the call has ended (at most about byeTimeout for the BYE).
func (l *Leg) Hangup() error {
	for {
		l.mu.Lock()
		switch l.state {
		case stateRinging:
			l.mu.Unlock()
			err := l.Reject(sip.StatusGlobalDecline)
			if errors.Is(err, ErrAnswered) {
				continue // answered meanwhile
			}
			if errors.Is(err, ErrCallEnded) {
				return nil
			}
			return err
		case stateAnswering:
			ch := l.answerDone
			l.mu.Unlock()
			select {
			case <-ch:
			case <-l.done:
			}
			continue
		case stateAnswered:
			l.state = stateHangingUp
			l.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
			err := l.dlg.Bye(ctx)
			cancel()
			l.finish()
			if err != nil && l.dlg.Context().Err() == nil {
				return fmt.Errorf("telephony: bye: %w", err)
			}
			return nil
		default:
			l.mu.Unlock()
			<-l.done
			return nil
		}
	}
}

// finish ends the leg once: closes the media (its sockets and reader), fences off Play and the
// tap, then closes done. Callers other than the first return at once.
func (l *Leg) finish() {
	l.mu.Lock()
	if l.state == stateEnded {
		l.mu.Unlock()
		return
	}
	l.remoteEnd = l.state == stateRinging || l.state == stateAnswering || l.state == stateAnswered
	l.state = stateEnded
	l.endedAt = time.Now()
	l.ended.Store(true)
	med, readerDone, snd := l.med, l.readerDone, l.snd
	l.mu.Unlock()

	if snd != nil {
		snd.stop()
	}
	if med != nil {
		if err := med.Close(); err != nil {
			l.log.Debug("closing media", "err", err)
		}
	}
	if readerDone != nil {
		<-readerDone
	}
	l.fenceSender() // a frame being sent finishes; later ones see ended
	close(l.done)
	l.log.Debug("leg ended", "remote", l.remoteEnd)
	l.mu.Lock()
	fs := l.afterEnd
	l.afterEnd, l.afterEndRan = nil, true
	l.mu.Unlock()
	for _, f := range fs {
		go f()
	}
}

// AfterEnd arranges for f to run in its own goroutine once the leg has ended (Done is
// closed), or at once if it has. It lets a caller follow many legs without a goroutine
// waiting on each.
func (l *Leg) AfterEnd(f func()) {
	l.mu.Lock()
	if !l.afterEndRan {
		l.afterEnd = append(l.afterEnd, f)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	go f()
}

// reasonPhrase returns the standard reason phrase of a SIP status code.
func reasonPhrase(code int) string {
	if r, ok := reasonPhrases[code]; ok {
		return r
	}
	switch code / 100 {
	case 3:
		return "Redirection"
	case 4:
		return "Client Error"
	case 5:
		return "Server Error"
	}
	return "Global Failure"
}

var reasonPhrases = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
	404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 410: "Gone",
	480: "Temporarily Unavailable", 484: "Address Incomplete", 486: "Busy Here",
	487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
	501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
	600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

// isTelephoneEvent reports whether a codec name is RFC 4733's.
func isTelephoneEvent(name string) bool { return strings.EqualFold(name, "telephone-event") }

// fenceSender waits out a frame being sent, if any: a fence, not a critical section. Flags
// set before it (ended, held) are seen by every frame sent after it returns.
func (l *Leg) fenceSender() {
	l.sendMu.Lock()
	l.sendMu.Unlock() //lint:ignore SA2001 the empty section waits for the sender holding the lock
}
