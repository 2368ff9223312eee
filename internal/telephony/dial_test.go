package telephony

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// startAnswerer runs a testpeer.Answerer until the test ends and returns its address and wait.
func startAnswerer(t *testing.T, a testpeer.Answerer) (string, func() (testpeer.Result, error)) {
	t.Helper()
	if a.Timeout == 0 {
		a.Timeout = 15 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, wait, err := a.Start(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_, _ = wait()
	})
	return addr, wait
}

// spans sums the lengths of the stretches of pcm where freq dominates (50 ms windows).
func toneTime(pcm []int16, freq float64, threshold float64) time.Duration {
	var total time.Duration
	for _, s := range audio.ToneSpans(pcm, audio.Rate, freq, 50*time.Millisecond, threshold) {
		total += s.Len()
	}
	return total
}

// Dial an answerer that sends 2 kHz, a DTMF key in band and one by INFO: the call is answered,
// both directions carry audio, keys arrive, and the INVITE carried the numbers as given.
func TestDialAnswered(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(l *Leg) { _ = l.Reject(404) })
	addr, wait := startAnswerer(t, testpeer.Answerer{
		Mode: testpeer.ModeAnswer,
		Script: []testpeer.Step{
			testpeer.Pause(300 * time.Millisecond),
			testpeer.SendAudio(audio.SineWave(2000, time.Second, 8000)),
			testpeer.SendDTMF('5'),
			testpeer.SendInfoDTMF('7'),
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	l, outcome, err := s.Dial(ctx, DialOptions{Trunk: "sip:" + addr, Dest: "+6590000001", CallerID: "+6511111111", RingTimeout: 5 * time.Second})
	if err != nil || outcome != DialAnswered || l == nil {
		t.Fatalf("Dial = %v, %q, %v", l, outcome, err)
	}
	answeredAt := time.Now()
	if d := answeredAt.Sub(t0); d > time.Second {
		t.Errorf("answer took %v", d)
	}
	rec := &recorder{}
	l.SetTap(rec)
	var mu sync.Mutex
	var keys []rune
	l.OnDTMF(func(k rune) {
		mu.Lock()
		keys = append(keys, k)
		mu.Unlock()
	})
	if got := l.From(); got != "+6511111111" {
		t.Errorf("From = %q", got)
	}
	if got := l.To(); got != "+6590000001" {
		t.Errorf("To = %q", got)
	}
	if err := l.Answer(ctx); err != nil {
		t.Errorf("Answer on a dialled leg = %v, want nil", err)
	}
	if err := l.Reject(486); !errors.Is(err, ErrAnswered) {
		t.Errorf("Reject = %v, want ErrAnswered", err)
	}
	if err := l.Play(ctx, audio.SineWave(1000, time.Second, 8000)); err != nil {
		t.Fatalf("Play: %v", err)
	}
	// The answerer's script ends 2 s after the ACK; then it waits for our BYE.
	time.Sleep(time.Until(answeredAt.Add(2200 * time.Millisecond)))
	if err := l.Hangup(); err != nil {
		t.Errorf("Hangup: %v", err)
	}
	waitDone(t, l, 2*time.Second)
	if l.EndedAt().Before(answeredAt) {
		t.Errorf("EndedAt = %v", l.EndedAt())
	}

	res, err := wait()
	if err != nil {
		t.Fatalf("answerer: %v\n%s", err, res.Trace)
	}
	if res.RequestUser != "+6590000001" || res.FromUser != "+6511111111" {
		t.Errorf("INVITE to %q from %q", res.RequestUser, res.FromUser)
	}
	if !res.Answered || !res.ByeFromServer || res.Cancelled {
		t.Errorf("answered %v, bye from us %v, cancelled %v", res.Answered, res.ByeFromServer, res.Cancelled)
	}
	heard := squeeze(res.Heard)
	if d := audio.Duration(len(heard)); d < 980*time.Millisecond || d > 1020*time.Millisecond {
		t.Errorf("answerer heard %v, want 1 s", d)
	}
	if share := toneShare(heard, 1000); share < 0.9 {
		t.Errorf("answerer's audio is %.2f 1 kHz", share)
	}
	in, out := rec.frames()
	if _, _, n := toneSpan(in, 2000); n < 45 {
		t.Errorf("%d of %d inbound frames carry the answerer's 2 kHz", n, len(in))
	}
	if _, _, n := toneSpan(out, 1000); n != 50 {
		t.Errorf("%d of %d outbound frames carry our 1 kHz, want 50", n, len(out))
	}
	mu.Lock()
	defer mu.Unlock()
	if string(keys) != "57" {
		t.Errorf("keys %q, want %q", string(keys), "57")
	}
}

// The far end hangs up: the dialled leg ends, and Play says so.
func TestDialFarEndHangsUp(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(l *Leg) {})
	addr, wait := startAnswerer(t, testpeer.Answerer{HangupAfter: 700 * time.Millisecond})
	l, outcome, err := s.Dial(context.Background(), DialOptions{Trunk: addr, Dest: "100"})
	if outcome != DialAnswered {
		t.Fatalf("Dial = %q, %v", outcome, err)
	}
	err = l.Play(context.Background(), audio.SineWave(440, 5*time.Second, 5000))
	if !errors.Is(err, ErrCallEnded) {
		t.Errorf("Play = %v, want ErrCallEnded", err)
	}
	waitDone(t, l, time.Second)
	res, err := wait()
	if err != nil || res.ByeFromServer || res.ByeAt.IsZero() {
		t.Errorf("answerer: %v, bye from us %v at %v", err, res.ByeFromServer, res.ByeAt)
	}
	if res.FromUser != "ivrd" {
		t.Errorf("From user without caller id = %q, want the user agent's", res.FromUser)
	}
	if err := l.Hangup(); err != nil {
		t.Errorf("Hangup after end = %v", err)
	}
}

// freePort returns a UDP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func TestDialOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mode       string // "" = nothing listens on the trunk
		ring       time.Duration
		cancelAt   time.Duration // cancel Dial's ctx this long after dialling
		want       DialOutcome
		wantErr    error // nil: no error; errAny: some error
		minT, maxT time.Duration
		status     int  // the answerer's final response
		cancelled  bool // the answerer saw CANCEL
	}{
		{name: "busy", mode: testpeer.ModeBusy, want: DialBusy, wantErr: errAny, maxT: time.Second, status: 486},
		{name: "decline", mode: testpeer.ModeDecline, want: DialFailed, wantErr: errAny, maxT: time.Second, status: 603},
		{name: "no answer", mode: testpeer.ModeNoAnswer, ring: 2 * time.Second, want: DialUnanswered,
			minT: 2 * time.Second, maxT: 2500 * time.Millisecond, status: 487, cancelled: true},
		{name: "caller gives up", mode: testpeer.ModeNoAnswer, cancelAt: 700 * time.Millisecond, want: DialUnanswered,
			wantErr: context.Canceled, minT: 700 * time.Millisecond, maxT: 1200 * time.Millisecond, status: 487, cancelled: true},
		{name: "unreachable", want: DialFailed, wantErr: errAny, minT: trunkResponseTimeout, maxT: trunkResponseTimeout + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, func(l *Leg) {})
			var addr string
			var wait func() (testpeer.Result, error)
			if tt.mode == "" {
				addr = freePort(t)
			} else {
				addr, wait = startAnswerer(t, testpeer.Answerer{Mode: tt.mode})
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelAt > 0 {
				time.AfterFunc(tt.cancelAt, cancel)
			}
			t0 := time.Now()
			l, outcome, err := s.Dial(ctx, DialOptions{Trunk: addr, Dest: "+6590000002", RingTimeout: tt.ring})
			took := time.Since(t0)
			if l != nil || outcome != tt.want {
				t.Errorf("Dial = %v, %q, want %q", l, outcome, tt.want)
			}
			switch {
			case tt.wantErr == errAny && err == nil, tt.wantErr == nil && err != nil,
				tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			var re *ResponseError
			if (outcome == DialBusy || outcome == DialFailed) && tt.status != 0 && (!errors.As(err, &re) || re.Code != tt.status) {
				t.Errorf("err = %v, want a ResponseError of %d", err, tt.status)
			}
			if took < tt.minT || took > tt.maxT {
				t.Errorf("Dial took %v, want %v..%v (err %v)", took, tt.minT, tt.maxT, err)
			}
			if wait == nil {
				return
			}
			res, err := wait()
			if err != nil {
				t.Fatalf("answerer: %v\n%s", err, res.Trace)
			}
			if res.Status != tt.status || res.Cancelled != tt.cancelled {
				t.Errorf("answerer sent %d, saw CANCEL %v; want %d, %v\n%s", res.Status, res.Cancelled, tt.status, tt.cancelled, res.Trace)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestDialInvalid(t *testing.T) {
	t.Parallel()
	s, err := NewServer(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name string
		o    DialOptions
		want string
	}{
		{"not serving", DialOptions{Trunk: "127.0.0.1:5070", Dest: "+65"}, "not serving"},
		{"no trunk", DialOptions{Dest: "+65"}, "no trunk"},
		{"bad dest", DialOptions{Trunk: "127.0.0.1:5070", Dest: "65 1"}, "invalid destination"},
		{"empty dest", DialOptions{Trunk: "127.0.0.1:5070"}, "invalid destination"},
		{"bad caller id", DialOptions{Trunk: "127.0.0.1:5070", Dest: "+65", CallerID: "a@b"}, "invalid caller id"},
	}
	for _, tt := range tests {
		l, outcome, err := s.Dial(context.Background(), tt.o)
		if l != nil || outcome != DialFailed || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Dial = %v, %q, %v; want failed, %q", tt.name, l, outcome, err, tt.want)
		}
	}
}

// Ending Serve hangs up dialled calls too, and Dial refuses afterwards.
func TestShutdownHangsUpDialled(t *testing.T) {
	t.Parallel()
	if !testpeer.Available() {
		t.Skip("sipp not installed")
	}
	s, err := NewServer(Config{Listen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, func(l *Leg) {}) }()
	addr, wait := startAnswerer(t, testpeer.Answerer{})
	l, outcome, err := s.Dial(context.Background(), DialOptions{Trunk: addr, Dest: "300"})
	if outcome != DialAnswered {
		t.Fatalf("Dial = %q, %v", outcome, err)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	waitDone(t, l, time.Second)
	res, err := wait()
	if err != nil || !res.ByeFromServer {
		t.Errorf("answerer: %v, got BYE %v", err, res.ByeFromServer)
	}
	if _, outcome, err := s.Dial(context.Background(), DialOptions{Trunk: addr, Dest: "300"}); outcome != DialFailed || !errors.Is(err, errNotServing) {
		t.Errorf("Dial after shutdown = %q, %v", outcome, err)
	}
}

// Dialled calls leave no sockets behind.
func TestDialNoSocketLeak(t *testing.T) {
	s := startServer(t, func(l *Leg) {})
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc")
		}
		return len(ents)
	}
	call := func() {
		addr, wait := startAnswerer(t, testpeer.Answerer{})
		l, outcome, err := s.Dial(context.Background(), DialOptions{Trunk: addr, Dest: "400"})
		if outcome != DialAnswered {
			t.Fatalf("Dial = %q, %v", outcome, err)
		}
		if err := l.Play(context.Background(), audio.SineWave(440, 100*time.Millisecond, 3000)); err != nil {
			t.Errorf("Play: %v", err)
		}
		if err := l.Hangup(); err != nil {
			t.Errorf("Hangup: %v", err)
		}
		if _, err := wait(); err != nil {
			t.Errorf("answerer: %v", err)
		}
	}
	call() // warm up
	before := fds()
	for range 3 {
		call()
	}
	var after int
	for range 20 {
		if after = fds(); after <= before {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after > before {
		t.Errorf("%d file descriptors before, %d after 3 dialled calls", before, after)
	}
}
