package telephony

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/diago/media"
	"github.com/pion/rtp"

	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// A stalled sender's burst is stamped when it is sent, up to maxLag (and a tick) after the
// frames were due: the recording's mixer must lag the clock by more, or the gap the burst
// closes is mixed as silence first and the recording has a hole the caller never heard
// (recording's TestRecordingTimeline, "held up 190 ms").
func TestRecordingMixLagOutlastsCatchUp(t *testing.T) {
	if recording.DefaultMixLag <= maxLag+pacerTick {
		t.Fatalf("recording's mix lag %v, the sender catches up after stalls of up to %v", recording.DefaultMixLag, maxLag+pacerTick)
	}
}

// Play cancelled half-way stops sending at once, and the leg's next Play is paced as usual;
// AfterEnd functions run once the call ends, including one added after the end.
func TestPlayCancelThenPlayAgain(t *testing.T) {
	t.Parallel()
	type outcome struct {
		cancelErr  error
		cancelTook time.Duration
		sentBefore int // 20 ms frames tapped during the cancelled Play
		sentAfter  int // frames tapped within 300 ms after it returned
		secondErr  error
		secondTook time.Duration
		ended      chan string
	}
	got := make(chan *outcome, 1)
	rec := &recorder{}
	s := startServer(t, func(l *Leg) {
		o := &outcome{ended: make(chan string, 2)}
		defer func() { got <- o }()
		l.SetTap(rec)
		l.AfterEnd(func() { o.ended <- "before" })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Answer(ctx); err != nil {
			o.cancelErr = err
			return
		}
		pctx, pcancel := context.WithTimeout(ctx, 400*time.Millisecond)
		t0 := time.Now()
		o.cancelErr = l.Play(pctx, tone(440, 5*time.Second, 6000))
		o.cancelTook = time.Since(t0)
		pcancel()
		_, out := rec.frames()
		o.sentBefore = len(out)
		time.Sleep(300 * time.Millisecond)
		_, out = rec.frames()
		o.sentAfter = len(out) - o.sentBefore

		t0 = time.Now()
		o.secondErr = l.Play(ctx, tone(880, 500*time.Millisecond, 6000))
		o.secondTook = time.Since(t0)
		_ = l.Hangup()
		waitDone(t, l, 2*time.Second)
		l.AfterEnd(func() { o.ended <- "after" })
	})
	res, err := testpeer.Call{Target: s.Addr(), Number: "100", Timeout: 15 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	o := <-got
	if !errors.Is(o.cancelErr, context.DeadlineExceeded) {
		t.Fatalf("cancelled Play = %v, want DeadlineExceeded", o.cancelErr)
	}
	if o.cancelTook < 380*time.Millisecond || o.cancelTook > 600*time.Millisecond {
		t.Errorf("cancelled Play returned after %v, want about 400 ms", o.cancelTook)
	}
	if o.sentBefore < 17 || o.sentBefore > 26 {
		t.Errorf("%d frames sent in the 400 ms before the cancel, want about 20", o.sentBefore)
	}
	if o.sentAfter != 0 {
		t.Errorf("%d frames sent after the cancelled Play returned", o.sentAfter)
	}
	if o.secondErr != nil {
		t.Fatalf("second Play: %v", o.secondErr)
	}
	if o.secondTook < 480*time.Millisecond || o.secondTook > 700*time.Millisecond {
		t.Errorf("second Play of 500 ms took %v", o.secondTook)
	}
	// Each runs in its own goroutine, so in either order.
	ran := map[string]bool{}
	for range 2 {
		select {
		case got := <-o.ended:
			ran[got] = true
		case <-time.After(2 * time.Second):
			t.Fatalf("AfterEnd functions that ran: %v, want before and after", ran)
		}
	}
	if !ran["before"] || !ran["after"] {
		t.Errorf("AfterEnd functions that ran: %v, want before and after", ran)
	}
}

// discardRTP takes RTP packets and drops them: the benchmarks below leave the system call out.
type discardRTP struct{}

func (discardRTP) WriteRTP(*rtp.Packet) error { return nil }

// benchLeg is an answered leg whose RTP goes nowhere.
func benchLeg() *Leg {
	l := &Leg{done: make(chan struct{}), playSem: make(chan struct{}, 1), pacer: &pacer{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := media.NewRTPPacketWriter(discardRTP{}, media.CodecAudioUlaw)
	w.ClockDisable()
	l.sendW.Store(w)
	l.state = stateAnswered
	return l
}

// The cost of a frame of silence against a played frame, without the send system call (for
// make bench's reading: silence skips G.711 encoding and the tap).
func BenchmarkWriteFrame(b *testing.B) {
	frame := tone(1000, frameDur, 8000)
	for _, bc := range []struct {
		name  string
		frame []int16
	}{{"silence", nil}, {"played", frame}} {
		b.Run(bc.name, func(b *testing.B) {
			l := benchLeg()
			l.SetTap(&recorder{})
			due := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if err := l.writeFrame(bc.frame, due, nil); err != nil {
					b.Fatal(err)
				}
				due = due.Add(frameDur)
			}
		})
	}
}

// BenchmarkPacerTick is a pacer tick over 500 legs (a core's share of 1,000 calls) when no
// frame is due: what the 3 ticks in 4 without a send cost.
func BenchmarkPacerTick(b *testing.B) {
	var senders []*sender
	for range 500 {
		senders = append(senders, &sender{leg: benchLeg(), due: time.Now().Add(time.Hour)})
	}
	now := time.Now()
	for b.Loop() {
		t := newTally(now)
		for _, s := range senders {
			s.mu.Lock()
			if !s.done {
				s.service(now, &t)
			}
			s.mu.Unlock()
		}
		t.add()
	}
}

// BenchmarkPacerSend is a pacer tick over 500 legs each with a frame of silence due (no
// system call): the pacer's per-frame cost, its frame counting included (ns/frame).
func BenchmarkPacerSend(b *testing.B) {
	var senders []*sender
	start := time.Now()
	for range 500 {
		senders = append(senders, &sender{leg: benchLeg(), due: start})
	}
	now := start
	b.ReportAllocs()
	for b.Loop() {
		t := newTally(now)
		for _, s := range senders {
			s.mu.Lock()
			s.service(now, &t)
			s.mu.Unlock()
		}
		t.add()
		now = now.Add(frameDur)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(senders)), "ns/frame")
}
