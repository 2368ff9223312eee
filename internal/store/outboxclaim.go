package store

import (
	"fmt"
	"time"
)

// Claims let any number of nodes share one outbox: a node attempts only the items it claimed,
// each claim taken in the statement that selects the items (on PostgreSQL with FOR UPDATE
// SKIP LOCKED: two nodes claiming at once get different items, neither waits for the other).
// Only the head of a session (outboxHead) can be claimed, and it stays pending while claimed,
// so no other item of its session can be claimed before its claimant records the outcome: a
// session's notifications are attempted one at a time, in order, whichever nodes attempt them.
//
// A claim lasts until its lease runs out, on the database's clock. A node that dies holding
// claims delays those items (and the rest of their sessions) until then; another node then
// claims them again. A node must therefore finish an attempt well within its lease.

// ClaimOutbox claims for node up to limit items that may be attempted at now: pending, due,
// the head of their session, and not claimed by any node (or their claim has run out). Each is
// claimed until lease from now; they are returned longest due first.
func (s *Store) ClaimOutbox(node string, now time.Time, lease time.Duration, limit int) ([]OutboxItem, error) {
	if node == "" || lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("store: claim outbox: node %q, lease %v, limit %d", node, lease, limit)
	}
	q := `UPDATE outbox SET claimed_by = ?, claimed_until = ` + s.d.nowMicros + ` + ?
		WHERE id IN (SELECT o.id FROM outbox o WHERE ` + outboxHead + ` AND o.next_at <= ?
			AND o.claimed_until <= ` + s.d.nowMicros + `
			ORDER BY o.next_at, o.id LIMIT ?` + s.d.skipLocked + `)
		RETURNING ` + outboxCols
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, q, node, lease.Microseconds(), micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	items, err := scanOutbox(rows)
	if err != nil {
		return nil, err
	}
	sortOutbox(items)
	return items, nil
}

// NextOutboxAt returns the earliest time after t at which a pending item may become claimable:
// its NextAt, or the end of a claim on it. ok is false when there is none.
func (s *Store) NextOutboxAt(t time.Time) (next time.Time, ok bool, err error) {
	c, cancel := ctx()
	defer cancel()
	var due, unclaimed *int64
	err = s.queryRow(c, `SELECT
		(SELECT MIN(next_at) FROM outbox WHERE state = 'pending' AND next_at > ?),
		(SELECT MIN(claimed_until) FROM outbox WHERE state = 'pending' AND claimed_until > ?)`,
		micros(t), micros(t)).Scan(&due, &unclaimed)
	if err != nil {
		return time.Time{}, false, err
	}
	switch {
	case due != nil && unclaimed != nil:
		return fromMicros(min(*due, *unclaimed)), true, nil
	case due != nil:
		return fromMicros(*due), true, nil
	case unclaimed != nil:
		return fromMicros(*unclaimed), true, nil
	}
	return time.Time{}, false, nil
}

// MarkDelivered records a successful attempt by node, the item's claimant; attempts is the
// total number made. The claim ends.
func (s *Store) MarkDelivered(id int64, node string, attempts int) error {
	return s.mark(id, node, `state = 'delivered', attempts = ?, last_error = '', updated_at = ?`, attempts, micros(now()))
}

// MarkRetry records a failed attempt by node and when to try again. The claim ends.
func (s *Store) MarkRetry(id int64, node string, attempts int, next time.Time, lastErr string) error {
	return s.mark(id, node, `attempts = ?, next_at = ?, last_error = ?, updated_at = ?`, attempts, micros(next), lastErr, micros(now()))
}

// MarkFailed records a failed attempt by node after which the item is given up. The claim ends.
func (s *Store) MarkFailed(id int64, node string, attempts int, lastErr string) error {
	return s.mark(id, node, `state = 'failed', attempts = ?, last_error = ?, updated_at = ?`, attempts, lastErr, micros(now()))
}

// ReleaseOutbox ends node's claim on an item without recording an attempt (an attempt
// abandoned at shutdown): it may be claimed again at once.
func (s *Store) ReleaseOutbox(id int64, node string) error {
	return s.mark(id, node, `updated_at = updated_at`)
}

// mark updates a pending item claimed by node (node "" for an item nobody claimed) and ends the
// claim. An item that is not pending, absent, or claimed by another node (node's claim ran out
// and another node took it) is ErrNotFound.
func (s *Store) mark(id int64, node string, set string, args ...any) error {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `UPDATE outbox SET `+set+`, claimed_by = '', claimed_until = 0
		WHERE id = ? AND state = 'pending' AND claimed_by = ?`, append(args, id, node)...)
	if err != nil {
		return fmt.Errorf("store: outbox %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: pending outbox item %d claimed by %q: %w", id, node, ErrNotFound)
	}
	return nil
}

// RequeueOutbox is for a node starting: every pending item is due at now (nothing waits out an
// old backoff), and node's claims from before are released (its attempts died with it). On an
// unshared store every claim is released: any claim there was this node's. It returns how many
// items are pending.
func (s *Store) RequeueOutbox(now time.Time, node string) (int64, error) {
	c, cancel := ctx()
	defer cancel()
	if _, err := s.exec(c, `UPDATE outbox SET next_at = ? WHERE state = 'pending' AND next_at > ?`, micros(now), micros(now)); err != nil {
		return 0, fmt.Errorf("store: requeue outbox: %w", err)
	}
	release := `UPDATE outbox SET claimed_by = '', claimed_until = 0 WHERE state = 'pending' AND claimed_by = ?`
	if !s.d.shared {
		release = `UPDATE outbox SET claimed_by = '', claimed_until = 0 WHERE state = 'pending' AND claimed_by <> ?`
		node = ""
	}
	if _, err := s.exec(c, release, node); err != nil {
		return 0, fmt.Errorf("store: requeue outbox: %w", err)
	}
	var n int64
	err := s.queryRow(c, `SELECT COUNT(*) FROM outbox WHERE state = 'pending'`).Scan(&n)
	return n, err
}
