package store

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Node is one ivrd process sharing the database: where other nodes reach it, and when it last
// said it was alive. Times are the database's clock.
type Node struct {
	ID          string
	APIURL      string // its internal API, for requests forwarded to it
	SIPAddr     string // its SIP address
	SecretID    string // fingerprint of its cluster secret ("" without one)
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// NewNodeID returns a random node id: "N" and 16 hex digits.
func NewNodeID() string { return "N" + randomHex(8) }

const nodeCols = `id, api_url, sip_addr, secret_id, started_at, heartbeat_at`

// RegisterNode adds a node, or updates its addresses after a restart, as started and alive
// now.
func (s *Store) RegisterNode(n Node) error {
	if n.ID == "" {
		return errors.New("store: node id is empty")
	}
	c, cancel := ctx()
	defer cancel()
	_, err := s.exec(c, `INSERT INTO nodes (`+nodeCols+`) VALUES (?, ?, ?, ?, `+s.d.nowMicros+`, `+s.d.nowMicros+`)
		ON CONFLICT (id) DO UPDATE SET api_url = excluded.api_url, sip_addr = excluded.sip_addr, secret_id = excluded.secret_id,
			started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`, n.ID, n.APIURL, n.SIPAddr, n.SecretID)
	if err != nil {
		return fmt.Errorf("store: register node %s: %w", n.ID, err)
	}
	return nil
}

// Heartbeat records that a node is alive now. A node that is not registered (removed by
// another node) is an error wrapping ErrNotFound.
func (s *Store) Heartbeat(id string) error {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `UPDATE nodes SET heartbeat_at = `+s.d.nowMicros+` WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: heartbeat of node %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: node %s: %w", id, ErrNotFound)
	}
	return nil
}

// RemoveNode deletes a node's registration (it stopped, or another node took over from it).
// A node that is not registered is an error wrapping ErrNotFound.
func (s *Store) RemoveNode(id string) error {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `DELETE FROM nodes WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: remove node %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: node %s: %w", id, ErrNotFound)
	}
	return nil
}

// RemoveDeadNode deletes a node's registration if it has been silent for longer than silence
// (a node that came back meanwhile stays), and reports whether it did.
func (s *Store) RemoveDeadNode(id string, silence time.Duration) (bool, error) {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `DELETE FROM nodes WHERE id = ? AND heartbeat_at < `+s.d.nowMicros+` - ?`, id, silence.Microseconds())
	if err != nil {
		return false, fmt.Errorf("store: remove node %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Nodes returns every registered node, by id.
func (s *Store) Nodes() ([]Node, error) {
	return s.nodes(`ORDER BY id`)
}

// LiveNodes returns the nodes heard from within the last d, by id.
func (s *Store) LiveNodes(d time.Duration) ([]Node, error) {
	return s.nodes(`WHERE heartbeat_at >= `+s.d.nowMicros+` - ? ORDER BY id`, d.Microseconds())
}

// DeadNodes returns the nodes silent for longer than d, by id.
func (s *Store) DeadNodes(d time.Duration) ([]Node, error) {
	return s.nodes(`WHERE heartbeat_at < `+s.d.nowMicros+` - ? ORDER BY id`, d.Microseconds())
}

func (s *Store) nodes(where string, args ...any) ([]Node, error) {
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `SELECT `+nodeCols+` FROM nodes `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var started, beat int64
		if err := rows.Scan(&n.ID, &n.APIURL, &n.SIPAddr, &n.SecretID, &started, &beat); err != nil {
			return nil, fmt.Errorf("store: nodes: %w", err)
		}
		n.StartedAt, n.HeartbeatAt = fromMicros(started), fromMicros(beat)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: nodes: %w", err)
	}
	return out, nil
}

// UnfinishedSessionsOf returns the sessions of node whose state is not "ended", oldest update
// first.
func (s *Store) UnfinishedSessionsOf(node string) ([]SessionRow, error) {
	return s.sessions(`WHERE node_id = ? AND state <> ? ORDER BY updated_at, id`, node, StateEnded)
}

// AdoptUnfinishedSessions is for a node starting: it makes node the owner of the unfinished
// sessions that have none (journaled before sessions had owners) and, on an unshared store,
// of every unfinished session (whatever ran there before was this node, under whatever id),
// and returns node's unfinished sessions, oldest update first: those its previous run left.
func (s *Store) AdoptUnfinishedSessions(node string) ([]SessionRow, error) {
	if node == "" {
		return nil, errors.New("store: adopt sessions: node id is empty")
	}
	c, cancel := ctx()
	defer cancel()
	from := "" // the sessions without an owner
	adopt := `UPDATE sessions SET node_id = ? WHERE node_id = ? AND state <> ?`
	if !s.d.shared { // every other node's
		from = node
		adopt = `UPDATE sessions SET node_id = ? WHERE node_id <> ? AND state <> ?`
	}
	if _, err := s.exec(c, adopt, node, from, StateEnded); err != nil {
		return nil, fmt.Errorf("store: adopt sessions: %w", err)
	}
	return s.UnfinishedSessionsOf(node)
}

// TakeOverSessions makes node by the owner of every unfinished session of node dead, provided
// dead has been silent (no heartbeat) for longer than silence, and returns them, oldest update
// first. It is one statement: of nodes taking over from the same dead node at once, each
// session goes to exactly one, and from then on the dead node can no longer save it
// (SaveSession: ErrNotOwner) should it come back.
func (s *Store) TakeOverSessions(dead, by string, silence time.Duration) ([]SessionRow, error) {
	if dead == "" || by == "" || dead == by {
		return nil, fmt.Errorf("store: take over sessions of %q by %q", dead, by)
	}
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `UPDATE sessions SET node_id = ?
		WHERE node_id = ? AND state <> ?
			AND EXISTS (SELECT 1 FROM nodes WHERE id = ? AND heartbeat_at < `+s.d.nowMicros+` - ?)
		RETURNING `+sessionCols, by, dead, StateEnded, dead, silence.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("store: take over sessions of %s: %w", dead, err)
	}
	out, err := scanSessions(rows)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].UpdatedAt.Equal(out[j].UpdatedAt) {
			return out[i].UpdatedAt.Before(out[j].UpdatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
