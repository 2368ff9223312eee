package telephony

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/emiago/diago/media"
	"github.com/pion/rtp"

	"github.com/ivrd/ivrd/internal/audio"
)

// TestEventPackets: the plan of one event, checked packet by packet and read back by the
// RFC 4733 parser and the detector ivrd's own calls use.
func TestEventPackets(t *testing.T) {
	tests := []struct {
		key     rune
		d, want time.Duration // asked, and the event's length after the bounds
	}{
		{'1', 200 * time.Millisecond, 200 * time.Millisecond},
		{'#', 160 * time.Millisecond, 160 * time.Millisecond},
		{'*', 0, eventInterval},
		{'d', 50 * time.Millisecond, 50 * time.Millisecond},
		{'0', time.Minute, MaxDigitDuration},
	}
	for _, tt := range tests {
		code, ok := digitEvent(tt.key)
		if !ok {
			t.Fatalf("%q: no event", tt.key)
		}
		ps := eventPackets(code, tt.d)
		updates := len(ps) - eventEndRepeats
		if want := int((tt.want - 1) / eventInterval); updates != want {
			t.Errorf("%q %v: %d updates, want %d", tt.key, tt.d, updates, want)
		}
		var det dtmfDetector
		var keys []rune
		t0 := time.Unix(1000, 0)
		for i, p := range ps {
			ev, err := parseTelephoneEvent(appendTelephoneEvent(nil, p.ev))
			if err != nil || ev != p.ev || ev.Event != code || ev.Volume != eventVolume {
				t.Fatalf("%q packet %d: %+v (%v)", tt.key, i, ev, err)
			}
			if p.marker != (i == 0) {
				t.Errorf("%q packet %d: marker %v", tt.key, i, p.marker)
			}
			switch {
			case i < updates:
				// Every 50 ms, with the duration elapsed.
				if at := time.Duration(i+1) * eventInterval; p.at != at || ev.End || int(ev.Duration) != audio.Samples(at) {
					t.Errorf("%q update %d: at %v, %+v", tt.key, i, p.at, ev)
				}
			default:
				// Three end packets with the whole duration, 20 ms apart.
				at := tt.want + time.Duration(i-updates)*eventEndGap
				if !ev.End || int(ev.Duration) != audio.Samples(tt.want) || p.at != at {
					t.Errorf("%q end packet %d: at %v (want %v), %+v", tt.key, i, p.at, at, ev)
				}
			}
			if k, ok := det.feed(0x1234, 8000, appendTelephoneEvent(nil, p.ev), t0.Add(p.at)); ok {
				keys = append(keys, k)
			}
		}
		want := tt.key
		if want == 'd' {
			want = 'D'
		}
		if string(keys) != string(want) {
			t.Errorf("%q: the detector read %q", tt.key, string(keys))
		}
	}
	for _, k := range "xE9 " {
		if _, ok := digitEvent(k); ok != (k == '9') {
			t.Errorf("digitEvent(%q) = %v", k, ok)
		}
	}
}

// sentPacket is one RTP packet a leg wrote, and when.
type sentPacket struct {
	at time.Time
	h  rtp.Header
	p  []byte
}

// rtpCapture is an RTP writer keeping what it is given.
type rtpCapture struct {
	mu   sync.Mutex
	pkts []sentPacket
}

func (c *rtpCapture) WriteRTP(p *rtp.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts = append(c.pkts, sentPacket{at: time.Now(), h: p.Header, p: append([]byte(nil), p.Payload...)})
	return nil
}

func (c *rtpCapture) all() []sentPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sentPacket(nil), c.pkts...)
}

// sendingLeg is an answered leg whose RTP goes to c (PCMU, telephone-event 101).
func sendingLeg(c *rtpCapture) *Leg {
	l := &Leg{done: make(chan struct{})}
	w := media.NewRTPPacketWriter(c, media.CodecAudioUlaw)
	w.ClockDisable()
	l.sendW.Store(w)
	l.audioPT.Store(ptPCMU)
	return l
}

// TestSendDigitRTP: the packets of an event in the leg's stream: the telephone-event payload
// type, one timestamp (the stream's where the audio paused), the marker on the first, sequence
// numbers following the audio's, updates 50 ms apart, three end packets; the audio stops
// meanwhile and resumes with its timestamp moved on by the event, marked as a new talkspurt.
func TestSendDigitRTP(t *testing.T) {
	c := &rtpCapture{}
	l := sendingLeg(c)
	const pt = 101
	due := time.Now()
	for range 3 { // 60 ms of audio before the key
		if err := l.writeFrame(nil, due, nil); err != nil {
			t.Fatal(err)
		}
		due = due.Add(frameDur)
	}
	time.Sleep(time.Until(due))
	done := make(chan error, 1)
	go func() { done <- l.sendEvent(context.Background(), pt, 5, 200*time.Millisecond) }()
	for !l.sendingEvent.Load() {
		time.Sleep(time.Millisecond)
	}
	// The pacer keeps offering frames meanwhile: none goes out during the event.
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Until(due)):
			if err := l.writeFrame(nil, due, nil); err != nil {
				t.Fatal(err)
			}
			due = due.Add(frameDur)
			continue
		}
		break
	}
	time.Sleep(time.Until(due))
	if err := l.writeFrame(nil, due, nil); err != nil { // the audio goes on
		t.Fatal(err)
	}

	pkts := c.all()
	var audioBefore, events, audioAfter []sentPacket
	for _, p := range pkts {
		switch {
		case p.h.PayloadType == pt:
			events = append(events, p)
		case len(events) == 0:
			audioBefore = append(audioBefore, p)
		default:
			audioAfter = append(audioAfter, p)
		}
	}
	if len(audioBefore) != 3 || len(events) != 3+eventEndRepeats || len(audioAfter) == 0 {
		t.Fatalf("%d audio packets, %d events, %d audio after; want 3, %d, some", len(audioBefore), len(events), len(audioAfter), 3+eventEndRepeats)
	}
	last := audioBefore[len(audioBefore)-1]
	// The event starts where the audio paused (give or take the goroutine's start).
	start := events[0].h.Timestamp
	if d := start - (last.h.Timestamp + audio.FrameSamples); d > 80 {
		t.Errorf("the event starts %d samples after the audio paused", d)
	}
	seq := last.h.SequenceNumber
	var det dtmfDetector
	var keys []rune
	for i, p := range events {
		seq++
		ev, err := parseTelephoneEvent(p.p)
		if err != nil {
			t.Fatal(err)
		}
		if p.h.Timestamp != start || p.h.SequenceNumber != seq || p.h.Marker != (i == 0) || p.h.SSRC != last.h.SSRC {
			t.Errorf("event packet %d: %+v (want timestamp %d, seq %d)", i, p.h, start, seq)
		}
		if i > 0 && i < 4 {
			if gap := p.at.Sub(events[i-1].at); gap < 40*time.Millisecond || gap > 80*time.Millisecond {
				t.Errorf("update %d came %v after the previous one", i, gap)
			}
		}
		if ev.End != (i >= 3) || ev.Event != 5 {
			t.Errorf("event packet %d: %+v", i, ev)
		}
		if k, ok := det.feed(p.h.SSRC, p.h.Timestamp, p.p, p.at); ok {
			keys = append(keys, k)
		}
	}
	if string(keys) != "5" {
		t.Errorf("detector read %q", string(keys))
	}
	after := audioAfter[0].h
	// The timestamp moved on by the event's 200 ms and the time the end packets took.
	if d := after.Timestamp - start; d < 1600 || d > 1600+800 || !after.Marker || after.SequenceNumber != seq+1 {
		t.Errorf("audio after the event: %+v (timestamp %d after the event's start)", after, d)
	}
}

// TestSendDigitCut: an event whose ctx ends is ended there, with its three end packets.
func TestSendDigitCut(t *testing.T) {
	c := &rtpCapture{}
	l := sendingLeg(c)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := l.sendEvent(ctx, 101, 11, 3*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > time.Second {
		t.Fatalf("sendEvent: %v after %v", err, time.Since(t0))
	}
	pkts := c.all()
	ends := 0
	for _, p := range pkts {
		ev, _ := parseTelephoneEvent(p.p)
		if ev.End {
			ends++
			if d := audio.Duration(int(ev.Duration)); d < 100*time.Millisecond || d > 400*time.Millisecond {
				t.Errorf("end packet says %v", d)
			}
		}
	}
	if ends != eventEndRepeats || !pkts[0].h.Marker {
		t.Fatalf("%d end packets of %d; first %+v", ends, len(pkts), pkts[0].h)
	}
	if l.sendingEvent.Load() {
		t.Fatal("the audio is still paused")
	}
}

// TestSendDigitsBetweenServers: one ivrd stack dials another and sends keys, as RFC 4733
// events and as SIP INFO; the other's DTMF reader gets them all, in order.
func TestSendDigitsBetweenServers(t *testing.T) {
	t.Parallel()
	got := make(chan rune, 32)
	far := startServer(t, func(l *Leg) {
		l.OnDTMF(func(k rune) { got <- k })
		ctx, cancel, ok := answerFor(l, 20*time.Second)
		defer cancel()
		if ok {
			<-ctx.Done()
		}
		_ = l.Hangup()
	})
	near := startServer(t, func(l *Leg) { _ = l.Reject(603) })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l, outcome, err := near.Dial(ctx, DialOptions{Trunk: "sip:" + far.Addr(), Dest: "100"})
	if outcome != DialAnswered || err != nil {
		t.Fatalf("Dial: %s, %v", outcome, err)
	}
	defer l.Hangup()
	const keys = "159#*D0"
	for _, k := range keys {
		if err := l.SendDigit(ctx, k, 120*time.Millisecond); err != nil {
			t.Fatalf("SendDigit %q: %v", k, err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	for _, k := range "a27" {
		if err := l.SendInfoDigit(ctx, k, 100*time.Millisecond); err != nil {
			t.Fatalf("SendInfoDigit %q: %v", k, err)
		}
	}
	if err := l.SendDigit(ctx, 'x', time.Second); !errors.Is(err, ErrInvalidDigit) {
		t.Fatalf("SendDigit x: %v", err)
	}
	var heard []rune
	for len(heard) < len(keys)+3 {
		select {
		case k := <-got:
			heard = append(heard, k)
		case <-time.After(3 * time.Second):
			t.Fatalf("the far end heard %q", string(heard))
		}
	}
	if string(heard) != keys+"A27" {
		t.Fatalf("the far end heard %q, want %q", string(heard), keys+"A27")
	}
	if err := l.Hangup(); err != nil {
		t.Fatal(err)
	}
	if err := l.SendDigit(ctx, '1', time.Second); !errors.Is(err, ErrCallEnded) {
		t.Fatalf("SendDigit after the end: %v", err)
	}
}

func TestInfoDTMFBody(t *testing.T) {
	for _, k := range "0123456789*#ABCD" {
		got, err := parseInfoDTMF(contentTypeDTMFRelay, infoDTMFBody(k, 250*time.Millisecond))
		if err != nil || got != k {
			t.Errorf("%q: read back as %q, %v", k, got, err)
		}
	}
}

// TestSendDigitCallEnds: a call that ends during a key gives ErrDigitCut once the key's first
// packet went out (the far end may have taken it), plain ErrCallEnded before.
func TestSendDigitCallEnds(t *testing.T) {
	for _, tt := range []struct {
		endAfter time.Duration
		want     error
	}{{80 * time.Millisecond, ErrDigitCut}, {20 * time.Millisecond, ErrCallEnded}} {
		l := sendingLeg(&rtpCapture{})
		time.AfterFunc(tt.endAfter, func() { l.ended.Store(true); close(l.done) })
		err := l.sendEvent(context.Background(), 101, 1, time.Second)
		if !errors.Is(err, tt.want) || !errors.Is(err, ErrCallEnded) || (tt.want == ErrCallEnded && errors.Is(err, ErrDigitCut)) {
			t.Errorf("call ended %v in: %v, want %v", tt.endAfter, err, tt.want)
		}
	}
}
