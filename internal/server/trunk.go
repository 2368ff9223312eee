package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/telephony"
)

// trunk gives the engine outbound calls through the configured SIP trunk, bridges and
// conference rooms (the room registry lives here: rooms exist while someone is in them).
type trunk struct {
	tel         *telephony.Server
	addr        string // "" when no trunk is configured: Dial fails
	ringTimeout time.Duration

	mu    sync.Mutex
	rooms map[string]*telephony.Room
}

func (t *trunk) Dial(ctx context.Context, dest, callerID string) (ivr.Call, string, error) {
	leg, outcome, err := t.tel.Dial(ctx, telephony.DialOptions{Trunk: t.addr, Dest: dest, CallerID: callerID, RingTimeout: t.ringTimeout})
	if leg == nil {
		return nil, string(outcome), err // a nil *Leg must not become a non-nil ivr.Call
	}
	return leg, string(outcome), err
}

func (t *trunk) Bridge(a, b ivr.Call) func() {
	la, ok1 := a.(*telephony.Leg)
	lb, ok2 := b.(*telephony.Leg)
	if !ok1 || !ok2 {
		return func() {}
	}
	return telephony.Bridge(la, lb)
}

func (t *trunk) JoinRoom(id string, create bool, c ivr.Call) (func(), error) {
	l, ok := c.(*telephony.Leg)
	if !ok {
		return nil, errors.New("server: not a telephony leg")
	}
	t.mu.Lock()
	r, exists := t.rooms[id]
	if !exists {
		if !create {
			t.mu.Unlock()
			return nil, ivr.ErrNoRoom
		}
		r = telephony.NewRoom(id)
		t.rooms[id] = r
		go func() { // forget the room once everybody has left
			<-r.Done()
			t.mu.Lock()
			if t.rooms[id] == r {
				delete(t.rooms, id)
			}
			t.mu.Unlock()
		}()
	}
	t.mu.Unlock()
	leave, err := r.Join(l)
	if errors.Is(err, telephony.ErrRoomFull) {
		return nil, ivr.ErrRoomFull
	}
	return leave, err
}

func (t *trunk) RoomExists(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.rooms[id]
	return ok
}
