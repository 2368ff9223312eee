package store

import (
	"database/sql"
	"errors"
	"fmt"
)

// PutRoom records that conference room id lives on node (it was made there).
func (s *Store) PutRoom(id, node string) error {
	if id == "" || node == "" {
		return fmt.Errorf("store: room %q of node %q", id, node)
	}
	c, cancel := ctx()
	defer cancel()
	_, err := s.exec(c, `INSERT INTO rooms (id, node_id, created_at) VALUES (?, ?, `+s.d.nowMicros+`)
		ON CONFLICT (id) DO UPDATE SET node_id = excluded.node_id, created_at = excluded.created_at`, id, node)
	if err != nil {
		return fmt.Errorf("store: put room %s: %w", id, err)
	}
	return nil
}

// RoomNode returns the node conference room id lives on, or an error wrapping ErrNotFound.
func (s *Store) RoomNode(id string) (string, error) {
	c, cancel := ctx()
	defer cancel()
	var node string
	err := s.queryRow(c, `SELECT node_id FROM rooms WHERE id = ?`, id).Scan(&node)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: room %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: room %s: %w", id, err)
	}
	return node, nil
}

// DeleteRoom forgets room id if it lives on node (it emptied there).
func (s *Store) DeleteRoom(id, node string) error {
	c, cancel := ctx()
	defer cancel()
	if _, err := s.exec(c, `DELETE FROM rooms WHERE id = ? AND node_id = ?`, id, node); err != nil {
		return fmt.Errorf("store: delete room %s: %w", id, err)
	}
	return nil
}

// DeleteRoomsOf forgets every room of node (it died, or started again without them) and
// returns how many there were.
func (s *Store) DeleteRoomsOf(node string) (int, error) {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `DELETE FROM rooms WHERE node_id = ?`, node)
	if err != nil {
		return 0, fmt.Errorf("store: delete rooms of %s: %w", node, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
