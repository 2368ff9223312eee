package telephony

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/testpeer"
)

var _ ivr.Call = (*Leg)(nil)

// tone returns d of a sine at freq Hz.
func tone(freq float64, d time.Duration, amp float64) []int16 {
	pcm := make([]int16, audio.Samples(d))
	for i := range pcm {
		pcm[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/audio.Rate))
	}
	return pcm
}

// toneShare is the fraction of pcm's energy at freq (Goertzel), 0 for silence.
func toneShare(pcm []int16, freq float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / audio.Rate
	coeff := 2 * math.Cos(w)
	var s1, s2, energy float64
	for _, v := range pcm {
		x := float64(v)
		energy += x * x
		s1, s2 = x+coeff*s1-s2, s1
	}
	if energy < float64(len(pcm))*100*100 { // quieter than about -50 dBFS: silence
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * power / (float64(len(pcm)) * energy)
}

// squeeze removes the silent stretches (runs of 16 or more samples of G.711 silence: µ-law's
// decodes to 0, A-law's to ±8) that the caller received between plays, leaving the audio that
// was played.
func squeeze(pcm []int16) []int16 {
	quiet := func(v int16) bool { return v >= -8 && v <= 8 }
	out := make([]int16, 0, len(pcm))
	for i := 0; i < len(pcm); {
		j := i
		for j < len(pcm) && quiet(pcm[j]) {
			j++
		}
		if j-i < 16 {
			out = append(out, pcm[i:j]...)
		}
		if j < len(pcm) {
			out = append(out, pcm[j])
		}
		i = j + 1
	}
	return out
}

// tapFrame is one tap call.
type tapFrame struct {
	at  time.Time
	pcm []int16
}

// recorder is an audio.Tap that keeps everything.
type recorder struct {
	mu      sync.Mutex
	in, out []tapFrame
}

func (r *recorder) Inbound(pcm []int16, at time.Time) {
	r.mu.Lock()
	r.in = append(r.in, tapFrame{at, append([]int16(nil), pcm...)})
	r.mu.Unlock()
}

func (r *recorder) Outbound(pcm []int16, at time.Time) {
	r.mu.Lock()
	r.out = append(r.out, tapFrame{at, append([]int16(nil), pcm...)})
	r.mu.Unlock()
}

func (r *recorder) frames() (in, out []tapFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tapFrame(nil), r.in...), append([]tapFrame(nil), r.out...)
}

// toneSpan returns the arrival times of the first and last frames carrying freq, and how many
// frames did.
func toneSpan(frames []tapFrame, freq float64) (first, last time.Time, n int) {
	for _, f := range frames {
		if toneShare(f.pcm, freq) > 0.6 {
			if n == 0 {
				first = f.at
			}
			last = f.at
			n++
		}
	}
	return first, last, n
}

// startServer runs a Server on an ephemeral loopback port until the test ends.
func startServer(t *testing.T, onCall func(*Leg)) *Server {
	t.Helper()
	return startServerWith(t, Config{}, onCall)
}

// startServerWith is startServer with cfg (Listen and Log are filled in).
func startServerWith(t *testing.T, cfg Config, onCall func(*Leg)) *Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() && os.Getenv("TELEPHONY_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return serve(t, cfg, onCall, log)
}

// startLoggedServer is startServer with the server's log (debug level) kept for the test, and
// shown when it fails.
func startLoggedServer(t *testing.T, onCall func(*Leg)) (*Server, *logBuffer) {
	t.Helper()
	buf := &logBuffer{}
	s := serve(t, Config{}, onCall, slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", buf.String())
		}
	})
	return s, buf
}

func serve(t *testing.T, cfg Config, onCall func(*Leg), log *slog.Logger) *Server {
	t.Helper()
	if !testpeer.Available() {
		t.Skip("sipp not installed")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Log = log
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, onCall) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return s
}

// logBuffer is a slog destination the test can read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wait waits until s appears n times in the log.
func (l *logBuffer) wait(t *testing.T, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(l.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not %d times in the log", s, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// answerFor answers l and returns a context that ends d later (cancel it when done with the
// call); ok is false when the answer failed.
func answerFor(l *Leg, d time.Duration) (ctx context.Context, cancel context.CancelFunc, ok bool) {
	ctx, cancel = context.WithTimeout(context.Background(), d)
	return ctx, cancel, l.Answer(ctx) == nil
}

// waitDone waits for the leg to end.
func waitDone(t *testing.T, l *Leg, d time.Duration) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(d):
		t.Fatalf("leg not done after %v", d)
	}
}

// callSendingTone places a call from sipp to s that waits lead after the answer, sends 1 kHz
// for d, then waits up to 5 s for the server to hang up.
func callSendingTone(t *testing.T, s *Server, lead, d time.Duration) testpeer.Result {
	t.Helper()
	res, err := testpeer.Call{
		Target: s.Addr(), Number: "6500000001", From: "6511111111",
		Script: []testpeer.Step{
			testpeer.Pause(lead),
			testpeer.SendAudio(tone(1000, d, 8000)),
			testpeer.Pause(5 * time.Second), // the server hangs up during this pause
		},
		Timeout: 15 * time.Second,
	}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	return res
}
