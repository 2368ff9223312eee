package telephony

import (
	"errors"
	"log/slog"
)

// MaxRoomSize is how many legs a Room holds.
const MaxRoomSize = 8

var (
	// ErrRoomFull is returned by Join when the room already has MaxRoomSize participants.
	ErrRoomFull = errors.New("telephony: room is full")
	// ErrRoomClosed is returned by Join once the room has ended (emptied or closed).
	ErrRoomClosed = errors.New("telephony: room has ended")
)

// Room is a conference room (Transfer dest=room:<id>): each participant hears the mix of the
// others, not itself, mixed every 20 ms. A participant's tap sees its own voice as Inbound and
// what it hears as Outbound. Play on a participant mixes the prompt into what that participant
// alone hears. A room ends (Done) when its last participant leaves or Close is called; it
// cannot be joined again after that. All methods are safe for concurrent use.
type Room struct {
	id string
	mx *mixer
}

// NewRoom makes an empty room.
func NewRoom(id string) *Room {
	return &Room{id: id, mx: newMixer(MaxRoomSize, 1, slog.Default().With("room", id))}
}

// ID returns the room's id.
func (r *Room) ID() string { return r.id }

// Join adds an answered leg. It fails with ErrRoomFull, ErrRoomClosed, ErrNotAnswered or
// ErrCallEnded. A leg in a bridge or another room leaves that first. The leg stays until leave
// is called (idempotent), it ends, or it joins another bridge or room; it is never hung up by
// the room.
func (r *Room) Join(l *Leg) (leave func(), err error) {
	m, err := r.mx.add(l)
	if errors.Is(err, errMixClosed) {
		err = ErrRoomClosed
	}
	if err != nil {
		return nil, err
	}
	r.mx.start()
	return func() { r.mx.remove(m) }, nil
}

// Len returns the number of participants.
func (r *Room) Len() int { return r.mx.len() }

// Done is closed when the room has ended: empty after having had participants, or closed.
func (r *Room) Done() <-chan struct{} { return r.mx.done }

// Close ends the room: every participant leaves (none is hung up). Idempotent.
func (r *Room) Close() { r.mx.close() }
