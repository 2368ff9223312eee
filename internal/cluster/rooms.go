package cluster

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// A conference room lives on the node where it was made. A caller on another node joins it
// through an internal SIP call from that node to the room's: its Request-URI user is
// RoomUserPrefix and the room id, its From user a token signed with the cluster secret
// ("n<unix seconds>-<signature>"), which the room's node checks before answering.

// RoomUserPrefix starts the Request-URI user of an internal call joining a room.
const RoomUserPrefix = "ivrd-room-"

// ErrBadRoomCall is what CheckRoomCall returns for an internal room call without a valid token.
var ErrBadRoomCall = errors.New("cluster: room call not signed with the cluster secret")

// RoomStore is where the cluster keeps which node each room lives on (*store.Store).
type RoomStore interface {
	PutRoom(id, node string) error
	RoomNode(id string) (string, error)
	DeleteRoom(id, node string) error
	DeleteRoomsOf(node string) (int, error)
}

// PutRoom records that room id lives on this node.
func (n *Node) PutRoom(id string) error {
	if n.cfg.Rooms == nil {
		return nil
	}
	return n.cfg.Rooms.PutRoom(id, n.cfg.ID)
}

// DeleteRoom forgets room id of this node (it emptied).
func (n *Node) DeleteRoom(id string) error {
	if n.cfg.Rooms == nil {
		return nil
	}
	return n.cfg.Rooms.DeleteRoom(id, n.cfg.ID)
}

// RoomCall returns, for room id living on another live node, the SIP address to call, and
// the Request-URI user and From user of the call; ok is false when the room lives on no other
// live node (or this node has no cluster secret).
func (n *Node) RoomCall(id string, now time.Time) (addr, dest, from string, ok bool) {
	if n.cfg.Rooms == nil || n.cfg.Secret == "" {
		return "", "", "", false
	}
	node, err := n.cfg.Rooms.RoomNode(id)
	if err != nil {
		return "", "", "", false
	}
	p, ok := n.livePeer(node)
	if !ok || p.SIPAddr == "" {
		return "", "", "", false
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	return p.SIPAddr, RoomUserPrefix + id, "n" + ts + "-" + n.roomSignature(id, ts), true
}

// IsRoomCall reports whether a call to Request-URI user to is an internal room call.
func IsRoomCall(to string) bool { return strings.HasPrefix(to, RoomUserPrefix) }

// CheckRoomCall checks an internal room call (to and from: its Request-URI and From users) and
// returns the room it joins.
func (n *Node) CheckRoomCall(to, from string, now time.Time) (string, error) {
	id, ok := strings.CutPrefix(to, RoomUserPrefix)
	ts, sig, ok2 := strings.Cut(strings.TrimPrefix(from, "n"), "-")
	if !ok || !ok2 || id == "" || n.cfg.Secret == "" || !strings.HasPrefix(from, "n") {
		return "", ErrBadRoomCall
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", ErrBadRoomCall
	}
	if d := now.Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return "", fmt.Errorf("%w (time off by %v)", ErrBadRoomCall, d)
	}
	if !hmac.Equal([]byte(sig), []byte(n.roomSignature(id, ts))) {
		return "", ErrBadRoomCall
	}
	return id, nil
}

// roomSignature signs a room call: 40 hex digits (the From user is at most 64 characters).
func (n *Node) roomSignature(id, ts string) string {
	return signature(n.cfg.Secret, "room", ts, "INVITE", id, nil)[:40]
}

// livePeer is peer, asking the store when the node is not among the live nodes of the last beat.
func (n *Node) livePeer(id string) (store.Node, bool) {
	if p, ok := n.peer(id); ok {
		return p, true
	}
	live, err := n.cfg.Store.LiveNodes(n.cfg.Silence)
	if err != nil {
		return store.Node{}, false
	}
	n.setPeers(live)
	return n.peer(id)
}
