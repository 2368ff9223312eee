package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/cluster"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/telephony"
)

// trunk gives the engine outbound calls through the configured SIP trunk (with its
// credentials and identity), keeps the trunk registration up when asked to, and holds bridges
// and conference rooms (the room registry lives here: rooms exist while someone is in them).
type trunk struct {
	tel         *telephony.Server
	cfg         config.Trunk // IsZero when no trunk is configured: Dial fails
	register    bool
	fromUser    string
	ringTimeout time.Duration
	log         *slog.Logger

	// cluster, when set, is this node of a cluster: rooms are registered in the store, and a
	// room of another node is joined over an internal SIP call (roomcalls.go).
	cluster *cluster.Node

	mu    sync.Mutex
	rooms map[string]*telephony.Room
}

func newTrunk(tel *telephony.Server, cfg config.Config, log *slog.Logger) *trunk {
	return &trunk{tel: tel, cfg: cfg.SIPTrunk, register: cfg.SIPTrunkRegister, fromUser: cfg.FromUser(),
		ringTimeout: cfg.RingTimeout, log: log, rooms: map[string]*telephony.Room{}}
}

func (t *trunk) Dial(ctx context.Context, dest, callerID string, earlyTo ivr.Call) (ivr.Call, string, error) {
	o := telephony.DialOptions{Trunk: t.cfg.String(), Username: t.cfg.User, Password: t.cfg.Password,
		Dest: dest, CallerID: callerID, FromUser: t.fromUser, RingTimeout: t.ringTimeout}
	if l, ok := earlyTo.(*telephony.Leg); ok {
		o.EarlyMedia = l
	}
	leg, outcome, err := t.tel.Dial(ctx, o)
	if leg == nil {
		return nil, string(outcome), err // a nil *Leg must not become a non-nil ivr.Call
	}
	return leg, string(outcome), err
}

// keepRegistered registers to the trunk (when configured to) until stop is called; stop
// unregisters and returns once that is done.
func (t *trunk) keepRegistered(ctx context.Context) (stop func()) {
	if !t.register {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		o := telephony.RegisterOptions{Registrar: t.cfg.String(), Username: t.cfg.User, Password: t.cfg.Password}
		if err := t.tel.Register(ctx, o); err != nil {
			t.log.Error("trunk registration", "err", err)
		}
	}()
	return func() { cancel(); <-done }
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
			return t.joinRemoteRoom(id, l)
		}
		r = telephony.NewRoom(id)
		t.rooms[id] = r
		t.registerRoom(id)
		go func() { // forget the room once everybody has left
			<-r.Done()
			t.mu.Lock()
			if t.rooms[id] == r {
				delete(t.rooms, id)
			}
			t.mu.Unlock()
			t.forgetRoom(id)
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
	_, ok := t.rooms[id]
	t.mu.Unlock()
	return ok || t.remoteRoom(id)
}
