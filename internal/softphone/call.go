package softphone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/prompt"
	"github.com/ivrd/ivrd/internal/telephony"
)

// How keys are sent (Options.DTMF).
const (
	DTMFRFC4733 = "rfc4733" // telephone-events in the RTP stream
	DTMFInfo    = "info"    // SIP INFO, application/dtmf-relay
)

// Defaults of Options.
const (
	DefaultDuration      = 30 * time.Second
	DefaultRingTimeout   = 30 * time.Second
	DefaultDigitsAfter   = 2 * time.Second
	DefaultDigitGap      = 250 * time.Millisecond
	DefaultDigitDuration = 200 * time.Millisecond
	DefaultFrom          = "softphone"
	// userAgent is the User-Agent of the softphone's requests.
	userAgent = "ivrd-call"
)

// The default sound, sent when no file is given (there is no microphone): DefaultToneHz for
// toneOn, then toneOff of silence, over and over.
const (
	DefaultToneHz = 440
	toneOn        = time.Second
	toneOff       = time.Second
	toneAmplitude = 8000 // about -12 dBFS
)

// byeLinger is how long the SIP stack stays up after the far end hung up, for the answer to
// its BYE to go out.
const byeLinger = 300 * time.Millisecond

// Options describe one call.
type Options struct {
	Target Target
	From   string // the From user; default DefaultFrom
	// Play is what the call sends from the answer on, once (8 kHz mono PCM). nil: the default
	// tone until the call ends.
	Play []int16
	// Digits are keys (0-9 * # A-D) sent DigitsAfter the answer, DigitDuration each and
	// DigitGap apart, by DTMF (DTMFRFC4733, the default, or DTMFInfo).
	Digits        string
	DTMF          string
	DigitsAfter   time.Duration
	DigitGap      time.Duration
	DigitDuration time.Duration
	// Record, when set, is a WAV file (8 kHz mono, 16-bit) to write what the call hears,
	// from the answer to the end, time-aligned (silence where nothing came).
	Record string
	// Duration is how long the call lasts once answered before the softphone hangs up; 0:
	// until the far end hangs up (or ctx ends).
	Duration    time.Duration
	RingTimeout time.Duration // default DefaultRingTimeout
	// CA is a PEM file of authorities trusted for a TLS target, beside the system's.
	CA string
	// Bind is the local SIP address (UDP and TCP). Default: the address this machine would
	// reach the target from, on a free port.
	Bind string
	Log  *slog.Logger
}

// Summary is how a call went.
type Summary struct {
	Target   Target
	Outcome  telephony.DialOutcome // answered, busy, unanswered, failed
	Status   int                   // the final SIP status of the INVITE (200 when answered; 0 when none came)
	Reason   string                // its reason phrase
	Duration time.Duration         // from the answer to the end
	EndedBy  string                // "us" or "far end" (answered calls)
	Digits   string                // the keys sent (all of Options.Digits, unless the call ended first)
	DTMF     string                // how they were sent
	Record   string                // the WAV file written, if any
	Bytes    int64                 // its size
	Samples  int64                 // samples in it
}

// Answered reports whether the far end answered.
func (s Summary) Answered() bool { return s.Outcome == telephony.DialAnswered }

// ErrNotAnswered is what Call returns (wrapped) when the far end did not answer.
var ErrNotAnswered = errors.New("call not answered")

// Call places the call o describes, runs it until o.Duration has passed since the answer, the
// far end hangs up or ctx ends (then it hangs up), and returns its summary. The error is
// non-nil when the call was not answered (wrapping ErrNotAnswered, and a
// *telephony.ResponseError when the far end refused it), when keys could not be sent, or when
// the recording could not be written; the summary is filled in as far as the call went.
func Call(ctx context.Context, o Options) (Summary, error) {
	sum := Summary{Target: o.Target, DTMF: o.DTMF, Record: o.Record}
	if err := o.check(); err != nil {
		return sum, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bind, err := o.bindAddr()
	if err != nil {
		return sum, err
	}
	srv, err := telephony.NewServer(telephony.Config{Listen: bind, TrunkCA: o.CA, UserAgent: userAgent, Log: log})
	if err != nil {
		return sum, err
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		// Nothing calls the softphone: an INVITE to it is declined.
		served <- srv.Serve(sctx, func(l *telephony.Leg) { _ = l.Reject(603) })
	}()
	farEnd := false
	defer func() {
		if farEnd {
			// sipgo answers a BYE only after it has ended the dialog (DialogClientSession.ReadBye),
			// which is what tells us the call ended: the 200 OK is still on its way.
			time.Sleep(byeLinger)
		}
		stop()
		if err := <-served; err != nil {
			log.Warn("sip stack", "err", err)
		}
	}()

	rec, err := newHeard(o.Record)
	if err != nil {
		return sum, err
	}
	defer rec.abort()
	leg, outcome, err := srv.Dial(ctx, telephony.DialOptions{Trunk: o.Target.Trunk(), Dest: o.Target.User,
		FromUser: o.from(), RingTimeout: o.ringTimeout()})
	sum.Outcome = outcome
	if outcome != telephony.DialAnswered {
		var re *telephony.ResponseError
		if errors.As(err, &re) {
			sum.Status, sum.Reason = re.Code, re.Reason
		}
		if err == nil {
			err = errors.New(string(outcome))
		}
		return sum, fmt.Errorf("%w: %w", ErrNotAnswered, err)
	}
	sum.Status, sum.Reason = 200, "OK"
	answered := time.Now()
	if rec != nil {
		rec.start(answered)
		leg.SetTap(rec)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if err := play(cctx, leg, o.Play); err != nil && cctx.Err() == nil && !errors.Is(err, telephony.ErrCallEnded) {
			log.Warn("play", "err", err)
		}
	}()
	keys := make(chan keysResult, 1)
	go func() { keys <- sendKeys(cctx, leg, o) }()

	var limit <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		limit = t.C
	}
	select {
	case <-leg.Done():
		sum.EndedBy, farEnd = "far end", true
	case <-limit:
		sum.EndedBy = "us"
	case <-ctx.Done():
		sum.EndedBy = "us"
	}
	cancel()
	if sum.EndedBy == "us" {
		if err := leg.Hangup(); err != nil {
			log.Warn("hangup", "err", err)
		}
	}
	ended := leg.EndedAt()
	if ended.IsZero() {
		ended = time.Now()
	}
	sum.Duration = ended.Sub(answered)
	leg.SetTap(nil)
	kr := <-keys
	sum.Digits = kr.sent
	var errs []error
	if kr.err != nil {
		errs = append(errs, kr.err)
	}
	if o.Record != "" {
		sum.Samples, sum.Bytes, err = rec.finish(ended)
		if err != nil {
			errs = append(errs, fmt.Errorf("recording %s: %w", o.Record, err))
		}
	}
	return sum, errors.Join(errs...)
}

// check validates o and fills in its defaults.
func (o *Options) check() error {
	switch o.DTMF {
	case "":
		o.DTMF = DTMFRFC4733
	case DTMFRFC4733, DTMFInfo:
	default:
		return fmt.Errorf("--dtmf %q: rfc4733 or info", o.DTMF)
	}
	for _, k := range o.Digits {
		if !strings.ContainsRune("0123456789*#ABCDabcd", k) {
			return fmt.Errorf("--digits: %q is not a key (0-9 * # A-D)", k)
		}
	}
	if o.DigitDuration == 0 {
		o.DigitDuration = DefaultDigitDuration
	}
	if o.DigitDuration < 50*time.Millisecond || o.DigitDuration > telephony.MaxDigitDuration {
		return fmt.Errorf("digit duration %v: from 50ms to %v", o.DigitDuration, telephony.MaxDigitDuration)
	}
	if o.Duration < 0 || o.DigitsAfter < 0 || o.DigitGap < 0 || o.RingTimeout < 0 {
		return errors.New("durations must not be negative")
	}
	if o.Target.Host == "" || o.Target.User == "" {
		return errors.New("no target")
	}
	return nil
}

func (o *Options) from() string {
	if o.From == "" {
		return DefaultFrom
	}
	return o.From
}

func (o *Options) ringTimeout() time.Duration {
	if o.RingTimeout == 0 {
		return DefaultRingTimeout
	}
	return o.RingTimeout
}

// bindAddr is the local SIP address: o.Bind, else the local address the system routes to the
// target from (a UDP "connection" sends nothing), on a free port.
func (o *Options) bindAddr() (string, error) {
	if o.Bind != "" {
		return o.Bind, nil
	}
	c, err := net.Dial("udp", o.Target.hostPort())
	if err != nil {
		return "", fmt.Errorf("no route to %s: %w", o.Target.hostPort(), err)
	}
	defer c.Close()
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), 0).String(), nil
}

// play sends pcm once, or the default tone until ctx ends when pcm is nil.
func play(ctx context.Context, leg *telephony.Leg, pcm []int16) error {
	if pcm != nil {
		return leg.Play(ctx, pcm)
	}
	beep := append(audio.SineWave(DefaultToneHz, toneOn, toneAmplitude), make([]int16, audio.Samples(toneOff))...)
	for {
		if err := leg.Play(ctx, beep); err != nil {
			return err
		}
	}
}

type keysResult struct {
	sent string
	err  error
}

// sendKeys sends o.Digits, o.DigitsAfter the answer, o.DigitGap apart.
func sendKeys(ctx context.Context, leg *telephony.Leg, o Options) keysResult {
	var r keysResult
	if o.Digits == "" {
		return r
	}
	wait := o.DigitsAfter
	for _, k := range o.Digits {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return r
		case <-leg.Done():
			return r
		}
		var err error
		if o.DTMF == DTMFInfo {
			err = leg.SendInfoDigit(ctx, k, o.DigitDuration)
		} else {
			err = leg.SendDigit(ctx, k, o.DigitDuration)
		}
		switch {
		case err == nil:
			r.sent += string(k)
		case errors.Is(err, telephony.ErrDigitCut): // begun: the far end may have it
			r.sent += string(k)
			return r
		case ctx.Err() != nil || errors.Is(err, telephony.ErrCallEnded):
			return r
		default:
			r.err = fmt.Errorf("sending %q: %w", k, err)
			return r
		}
		wait = o.DigitGap
	}
	return r
}

// ReadPlay reads an audio file as the prompts' <url> files are read (.wav of any rate,
// channels and PCM/G.711 encoding, .mp3, .gsm) and returns it as 8 kHz mono PCM.
func ReadPlay(path string) ([]int16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pcm, err := prompt.DecodeFile(b, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pcm, nil
}
