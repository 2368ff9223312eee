package store

import (
	"errors"
	"testing"
	"time"
)

// A room lives on the node that made it until it empties there, or until its node dies and
// another forgets the dead node's rooms.
func TestRooms(t *testing.T) { eachStore(t, testRooms) }

func testRooms(t *testing.T, s *Store) {
	if _, err := s.RoomNode("R1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown room: %v", err)
	}
	for _, r := range [][2]string{{"R1", "n1"}, {"R2", "n1"}, {"R3", "n2"}} {
		if err := s.PutRoom(r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.RoomNode("R3"); err != nil || n != "n2" {
		t.Fatalf("RoomNode(R3) = %q, %v", n, err)
	}
	if err := s.PutRoom("", "n1"); err == nil {
		t.Fatal("a room without id was put")
	}
	// Another node's row is not deleted by a node that does not hold the room.
	if err := s.DeleteRoom("R3", "n1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.RoomNode("R3"); n != "n2" {
		t.Fatalf("R3 deleted by n1: %q", n)
	}
	if err := s.DeleteRoom("R3", "n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RoomNode("R3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("R3 after its delete: %v", err)
	}
	if n, err := s.DeleteRoomsOf("n1"); err != nil || n != 2 {
		t.Fatalf("DeleteRoomsOf(n1) = %d, %v", n, err)
	}
	if _, err := s.RoomNode("R1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("R1 after its node's rooms were deleted: %v", err)
	}
}

// A dead node's registration is removed only while it is still silent; its secret fingerprint
// is kept with it.
func TestRemoveDeadNode(t *testing.T) { eachStore(t, testRemoveDeadNode) }

func testRemoveDeadNode(t *testing.T, s *Store) {
	if err := s.RegisterNode(Node{ID: "n1", APIURL: "http://127.0.0.1:1", SecretID: "abc"}); err != nil {
		t.Fatal(err)
	}
	if all, err := s.Nodes(); err != nil || len(all) != 1 || all[0].SecretID != "abc" {
		t.Fatalf("Nodes() = %+v, %v", all, err)
	}
	if gone, err := s.RemoveDeadNode("n1", time.Minute); err != nil || gone {
		t.Fatalf("a live node removed: %v, %v", gone, err)
	}
	time.Sleep(250 * time.Millisecond)
	if gone, err := s.RemoveDeadNode("n1", 200*time.Millisecond); err != nil || !gone {
		t.Fatalf("the dead node not removed: %v, %v", gone, err)
	}
	if gone, err := s.RemoveDeadNode("n1", 200*time.Millisecond); err != nil || gone {
		t.Fatalf("removed twice: %v, %v", gone, err)
	}
}
