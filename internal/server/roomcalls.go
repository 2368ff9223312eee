package server

import (
	"context"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/telephony"
)

// Rooms across the nodes of a cluster (README: "A cluster of nodes"): a room is registered in
// the store while it exists; a caller on another node joins it through an internal SIP call
// from its node to the room's, bridged to the caller, which the room's node answers into the
// room once the call's token checks out.

// roomCallTimeout bounds how long the internal call to a room's node may ring.
const roomCallTimeout = 5 * time.Second

func (t *trunk) registerRoom(id string) {
	if t.cluster == nil {
		return
	}
	if err := t.cluster.PutRoom(id); err != nil {
		t.log.Error("room: register in the cluster", "room", id, "err", err)
	}
}

func (t *trunk) forgetRoom(id string) {
	if t.cluster == nil {
		return
	}
	if err := t.cluster.DeleteRoom(id); err != nil {
		t.log.Error("room: forget in the cluster", "room", id, "err", err)
	}
}

// remoteRoom reports whether room id lives on another live node.
func (t *trunk) remoteRoom(id string) bool {
	if t.cluster == nil {
		return false
	}
	_, _, _, ok := t.cluster.RoomCall(id, time.Now())
	return ok
}

// joinRemoteRoom joins l to room id of another node: it calls that node and bridges the call
// to l until leave is called or either call ends.
func (t *trunk) joinRemoteRoom(id string, l *telephony.Leg) (func(), error) {
	if t.cluster == nil {
		return nil, ivr.ErrNoRoom
	}
	addr, dest, from, ok := t.cluster.RoomCall(id, time.Now())
	if !ok {
		return nil, ivr.ErrNoRoom
	}
	ctx, cancel := context.WithTimeout(context.Background(), roomCallTimeout)
	defer cancel()
	peer, outcome, err := t.tel.Dial(ctx, telephony.DialOptions{Trunk: "sip:" + addr, Dest: dest, CallerID: from,
		RingTimeout: roomCallTimeout})
	if peer == nil {
		t.log.Warn("room: internal call to the room's node failed", "room", id, "node", addr, "outcome", outcome, "err", err)
		return nil, ivr.ErrNoRoom
	}
	stop := telephony.Bridge(l, peer)
	t.log.Info("room: joined over an internal call", "room", id, "node", addr)
	go func() { // the caller leaving ends the internal call
		select {
		case <-l.Done():
		case <-peer.Done():
		}
		stop()
		_ = peer.Hangup()
	}()
	return func() { stop(); _ = peer.Hangup() }, nil
}

// acceptRoomCall answers an internal call from another node into the room it names, or
// refuses it (403 without a valid token, 404 for a room not here).
func (t *trunk) acceptRoomCall(leg *telephony.Leg) {
	log := leg.Logger()
	if t.cluster == nil {
		_ = leg.Reject(404)
		return
	}
	id, err := t.cluster.CheckRoomCall(leg.To(), leg.From(), time.Now())
	if err != nil {
		log.Warn("room: internal call refused", "to", leg.To(), "source", leg.Source(), "err", err)
		_ = leg.Reject(403)
		return
	}
	t.mu.Lock()
	r := t.rooms[id]
	t.mu.Unlock()
	if r == nil {
		_ = leg.Reject(404)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), roomCallTimeout)
	defer cancel()
	if err := leg.Answer(ctx); err != nil {
		log.Warn("room: answer internal call", "room", id, "err", err)
		return
	}
	leave, err := r.Join(leg)
	if err != nil {
		log.Warn("room: internal call cannot join", "room", id, "err", err)
		_ = leg.Hangup()
		return
	}
	log.Info("room: internal call joined", "room", id, "source", leg.Source())
	go func() { <-leg.Done(); leave() }()
}
