package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A room registered by node na is called from node nb at na's SIP address, with a token na
// accepts and nothing else does; once na is dead its rooms are forgotten.
func TestRoomCalls(t *testing.T) {
	st := openPG(t)
	start := func(id, secret string) *Node {
		t.Helper()
		n, err := New(Config{Store: st, ID: id, APIURL: "http://127.0.0.1:1/" + id, SIPAddr: "127.0.0.1:50" + id[1:], Secret: secret,
			Beat: 50 * time.Millisecond, Silence: 400 * time.Millisecond, TakeOver: newTakeOvers().take, Rooms: st, Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		return n
	}
	na, nb := start("n1", "s3cret"), start("n2", "s3cret")
	if err := na.PutRoom("R1"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, _, _, ok := na.RoomCall("R1", now); ok {
		t.Fatal("a node called its own room")
	}
	if _, _, _, ok := nb.RoomCall("R2", now); ok {
		t.Fatal("a call to a room that does not exist")
	}
	addr, dest, from, ok := nb.RoomCall("R1", now)
	if !ok || addr != "127.0.0.1:501" || !IsRoomCall(dest) || len(from) > 64 {
		t.Fatalf("RoomCall(R1) = %q %q %q %v", addr, dest, from, ok)
	}
	if id, err := na.CheckRoomCall(dest, from, now); err != nil || id != "R1" {
		t.Fatalf("CheckRoomCall = %q, %v", id, err)
	}
	other := &Node{cfg: Config{ID: "nx", Secret: "other"}}
	for name, check := range map[string]func() (string, error){
		"other secret":    func() (string, error) { return other.CheckRoomCall(dest, from, now) },
		"other room":      func() (string, error) { return na.CheckRoomCall(RoomUserPrefix+"R9", from, now) },
		"too old":         func() (string, error) { return na.CheckRoomCall(dest, from, now.Add(2*MaxSkew)) },
		"signature cut":   func() (string, error) { return na.CheckRoomCall(dest, from[:len(from)-1], now) },
		"no token":        func() (string, error) { return na.CheckRoomCall(dest, "+6511111111", now) },
		"not a room call": func() (string, error) { return na.CheckRoomCall("+6561234567", from, now) },
		"tampered time": func() (string, error) {
			return na.CheckRoomCall(dest, strings.Replace(from, "n1", "n2", 1), now)
		},
	} {
		if id, err := check(); !errors.Is(err, ErrBadRoomCall) {
			t.Errorf("%s: CheckRoomCall = %q, %v", name, id, err)
		}
	}
	if err := na.DeleteRoom("R1"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := nb.RoomCall("R1", now); ok {
		t.Fatal("a call to a room that emptied")
	}
	// na dies with a room: nb forgets it.
	if err := na.PutRoom("R3"); err != nil {
		t.Fatal(err)
	}
	na.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := st.RoomNode("R3"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead node's room is still registered")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
