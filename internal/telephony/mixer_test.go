package telephony

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// memLeg is an answered leg without SIP or RTP, for unit tests of bridges and rooms: its
// inbound audio is fed by hand and what a mixer sends it is captured.
func memLeg(id string) *Leg {
	l := &Leg{
		id:      id,
		state:   stateAnswered,
		done:    make(chan struct{}),
		playSem: make(chan struct{}, 1),
		digits:  make(chan rune, 1),
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	l.dtmfPT.Store(-1)
	return l
}

// capture records the frames a mixer sends a member.
type capture struct {
	mu     sync.Mutex
	frames [][]int16
}

func (c *capture) hook(m *member) {
	m.emit = func(frame []int16, _ time.Time) error {
		c.mu.Lock()
		c.frames = append(c.frames, slices.Clone(frame))
		c.mu.Unlock()
		return nil
	}
}

func (c *capture) last() []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.frames) == 0 {
		return nil
	}
	return c.frames[len(c.frames)-1]
}

func constFrame(v int16) []int16 {
	f := make([]int16, audio.FrameSamples)
	for i := range f {
		f[i] = v
	}
	return f
}

// Each member hears the exact sum of the others, saturated, never itself.
func TestMixOthers(t *testing.T) {
	tests := []struct {
		name string
		in   []int16 // each member's constant input
		want []int16 // what each hears
	}{
		{"two", []int16{100, -300}, []int16{-300, 100}},
		{"three", []int16{100, 200, 400}, []int16{600, 500, 300}},
		{"silent member", []int16{0, 1000, 0}, []int16{1000, 0, 1000}},
		{"saturates high", []int16{30000, 30000, 30000}, []int16{32767, 32767, 32767}},
		{"saturates low", []int16{-30000, -30000, 5}, []int16{-29995, -29995, -32768}},
		{"exact sum before saturation", []int16{30000, 30000, -30000}, []int16{0, 0, 32767}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mx := newMixer(MaxRoomSize, 1, slog.Default())
			caps := make([]*capture, len(tt.in))
			members := make([]*member, len(tt.in))
			for i := range tt.in {
				m, err := mx.add(memLeg(string(rune('a' + i))))
				if err != nil {
					t.Fatal(err)
				}
				caps[i] = &capture{}
				caps[i].hook(m)
				members[i] = m
			}
			// Prefill: two frames must be buffered before playout starts.
			for _, m := range members {
				m.in.push(constFrame(1))
			}
			for i, m := range members {
				m.in.push(constFrame(tt.in[i]))
				m.in.push(constFrame(tt.in[i]))
			}
			mx.mix(time.Now()) // takes the frame of 1s
			mx.mix(time.Now())
			for i, c := range caps {
				got := c.last()
				if len(got) != audio.FrameSamples || got[0] != tt.want[i] || got[len(got)-1] != tt.want[i] {
					t.Errorf("member %d hears %v..., want %d", i, got[:3], tt.want[i])
				}
			}
		})
	}
}

// A Play on a member is mixed into what that member alone hears, frame by frame, and returns
// once it has all gone out.
func TestMixPrompt(t *testing.T) {
	mx := newMixer(2, 2, slog.Default())
	a, b := memLeg("a"), memLeg("b")
	ma, err := mx.add(a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := mx.add(b)
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := &capture{}, &capture{}
	ca.hook(ma)
	cb.hook(mb)
	for range 6 {
		mb.in.push(constFrame(50))
	}
	prompt := slices.Concat(constFrame(7), constFrame(8), constFrame(9)[:100])
	played := make(chan error, 1)
	go func() { played <- a.Play(context.Background(), prompt) }()
	for { // wait for Play to hand its prompt over
		ma.pmu.Lock()
		handed := ma.prompt != nil
		ma.pmu.Unlock()
		if handed {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for range 3 {
		mx.mix(time.Now())
	}
	want := []int16{57, 58, 59}
	ca.mu.Lock()
	for i, f := range ca.frames {
		if f[0] != want[i] {
			t.Errorf("frame %d: a hears %d, want %d", i, f[0], want[i])
		}
	}
	if last := ca.frames[2]; last[99] != 59 || last[100] != 50 {
		t.Errorf("last prompt frame: %d then %d, want 59 then 50 (padding)", last[99], last[100])
	}
	ca.mu.Unlock()
	if got := cb.last(); got[0] != 0 {
		t.Errorf("b hears %d, want silence: the prompt is a's alone", got[0])
	}
	select {
	case err := <-played:
		if err != nil {
			t.Errorf("Play = %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Play did not return after its prompt went out")
	}
}

// Rooms hold MaxRoomSize legs; they end when emptied and cannot be joined again.
func TestRoomMembership(t *testing.T) {
	r := NewRoom("r1")
	if r.ID() != "r1" {
		t.Errorf("ID = %q", r.ID())
	}
	var leaves []func()
	for i := range MaxRoomSize {
		leave, err := r.Join(memLeg(string(rune('a' + i))))
		if err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		leaves = append(leaves, leave)
	}
	ninth := memLeg("i")
	if _, err := r.Join(ninth); !errors.Is(err, ErrRoomFull) {
		t.Fatalf("9th join = %v, want ErrRoomFull", err)
	}
	if ninth.Mixed() {
		t.Error("a refused leg is mixed")
	}
	if r.Len() != MaxRoomSize {
		t.Errorf("Len = %d", r.Len())
	}
	leaves[0]()
	leaves[0]() // idempotent
	if r.Len() != MaxRoomSize-1 {
		t.Errorf("Len after leave = %d", r.Len())
	}
	if _, err := r.Join(ninth); err != nil {
		t.Fatalf("join after a leave: %v", err)
	}
	select {
	case <-r.Done():
		t.Fatal("room done while occupied")
	default:
	}
	r.Close()
	select {
	case <-r.Done():
	case <-time.After(time.Second):
		t.Fatal("room not done after Close")
	}
	if r.Len() != 0 || ninth.Mixed() {
		t.Errorf("after Close: Len %d, leg mixed %v", r.Len(), ninth.Mixed())
	}
	if _, err := r.Join(memLeg("j")); !errors.Is(err, ErrRoomClosed) {
		t.Errorf("join after end = %v, want ErrRoomClosed", err)
	}

	// A room ends by itself when its last member leaves or its call ends.
	r2 := NewRoom("r2")
	a, b := memLeg("a"), memLeg("b")
	leaveA, _ := r2.Join(a)
	if _, err := r2.Join(b); err != nil {
		t.Fatal(err)
	}
	leaveA()
	b.finish() // the call ends; the mixer notices within a frame
	select {
	case <-r2.Done():
	case <-time.After(time.Second):
		t.Fatal("room not done after its last member's call ended")
	}
}

func TestJoinRefused(t *testing.T) {
	r := NewRoom("x")
	ringing := memLeg("ringing")
	ringing.state = stateRinging
	ended := memLeg("ended")
	ended.finish()
	for _, tt := range []struct {
		l    *Leg
		want error
	}{{ringing, ErrNotAnswered}, {ended, ErrCallEnded}} {
		if _, err := r.Join(tt.l); !errors.Is(err, tt.want) {
			t.Errorf("Join(%s) = %v, want %v", tt.l.id, err, tt.want)
		}
	}
	if r.Len() != 0 {
		t.Errorf("Len = %d", r.Len())
	}
}

func waitUnmixed(t *testing.T, l *Leg) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for l.Mixed() {
		if time.Now().After(deadline) {
			t.Fatalf("leg %s still mixed", l.id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBridgeLifecycle(t *testing.T) {
	// stop ends the bridge, once.
	a, b := memLeg("a"), memLeg("b")
	stop := Bridge(a, b)
	if !a.Mixed() || !b.Mixed() {
		t.Fatal("legs not bridged")
	}
	stop()
	stop()
	if a.Mixed() || b.Mixed() {
		t.Error("legs still mixed after stop")
	}

	// Either leg ending ends it.
	c, d := memLeg("c"), memLeg("d")
	Bridge(c, d)
	c.finish()
	waitUnmixed(t, d)

	// Moving a bridged leg into a room ends its bridge.
	e, f := memLeg("e"), memLeg("f")
	stopEF := Bridge(e, f)
	r := NewRoom("r")
	if _, err := r.Join(e); err != nil {
		t.Fatal(err)
	}
	if f.Mixed() || !e.Mixed() || r.Len() != 1 {
		t.Errorf("after moving e: f mixed %v, e mixed %v, room %d", f.Mixed(), e.Mixed(), r.Len())
	}
	stopEF() // the old bridge's stop no longer touches e
	if !e.Mixed() {
		t.Error("stale stop took e out of the room")
	}
	r.Close()

	// Nothing is bridged with a ringing leg or with itself.
	g, h := memLeg("g"), memLeg("h")
	h.state = stateRinging
	Bridge(g, h)()
	if g.Mixed() || h.Mixed() {
		t.Error("bridged with a ringing leg")
	}
	Bridge(g, g)
	if g.Mixed() {
		t.Error("bridged with itself")
	}
}

// Eight participants cost little: one mix round for a full room.
func BenchmarkMixRoom(b *testing.B) {
	mx := newMixer(MaxRoomSize, 1, slog.Default())
	frame := audio.SineWave(440, frameDur, 8000)
	var members []*member
	for i := range MaxRoomSize {
		m, err := mx.add(memLeg(string(rune('a' + i))))
		if err != nil {
			b.Fatal(err)
		}
		m.emit = func([]int16, time.Time) error { return nil }
		members = append(members, m)
	}
	now := time.Now()
	for b.Loop() {
		for _, m := range members {
			m.in.push(frame)
		}
		mx.mix(now)
	}
}
