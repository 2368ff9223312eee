package store

import (
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Outbox item states.
const (
	OutboxPending   = "pending"
	OutboxDelivered = "delivered"
	OutboxFailed    = "failed"
)

// OutboxItem is one notification in the durable outbox (see internal/notify). Body and
// Signature are computed once, at enqueue time, so every attempt sends the same bytes.
//
// An item is attempted by the node that claimed it (ClaimOutbox), which then records the
// outcome (MarkDelivered, MarkRetry, MarkFailed) or gives the claim back (ReleaseOutbox).
type OutboxItem struct {
	ID         int64  // assigned by EnqueueOutbox; orders items
	DeliveryID string // stable across attempts
	AppID      string
	SessionKey string // items with the same non-empty key are delivered in ID order
	Target     string // the URL, as given
	Body       []byte
	Signature  string
	State      string
	Attempts   int // attempts made so far
	CreatedAt  time.Time
	NextAt     time.Time // when the next attempt is due
	UpdatedAt  time.Time
	LastError  string
	// ClaimedBy is the node attempting the item until ClaimedUntil ("" and zero: none).
	ClaimedBy    string
	ClaimedUntil time.Time
}

const outboxCols = `id, delivery_id, app_id, session_key, target, body, signature, state, attempts,
	created_at, next_at, updated_at, last_error, claimed_by, claimed_until`

// EnqueueOutbox stores a pending item, due at it.NextAt (default: CreatedAt, default: now),
// and returns it with ID and times filled in. DeliveryID must be non-empty. Enqueueing is
// idempotent on DeliveryID: an item whose delivery id is already stored (a repeat after a
// crash) is not stored again, and the stored one is returned.
func (s *Store) EnqueueOutbox(it OutboxItem) (OutboxItem, error) {
	if it.DeliveryID == "" || it.Target == "" {
		return OutboxItem{}, errors.New("store: outbox item needs a delivery id and a target")
	}
	if it.CreatedAt.IsZero() {
		it.CreatedAt = now()
	}
	if it.NextAt.IsZero() {
		it.NextAt = it.CreatedAt
	}
	if it.Body == nil {
		it.Body = []byte{}
	}
	it.State, it.Attempts, it.UpdatedAt, it.LastError = OutboxPending, 0, it.CreatedAt, ""
	c, cancel := ctx()
	defer cancel()
	err := s.queryRow(c, `INSERT INTO outbox (delivery_id, app_id, session_key, target, body, signature,
		state, attempts, created_at, next_at, updated_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, '')
		ON CONFLICT (delivery_id) DO NOTHING RETURNING id`,
		it.DeliveryID, it.AppID, it.SessionKey, it.Target, it.Body, it.Signature, it.State,
		micros(it.CreatedAt), micros(it.NextAt), micros(it.UpdatedAt)).Scan(&it.ID)
	if errors.Is(err, sql.ErrNoRows) { // stored before
		return s.OutboxByDeliveryID(it.DeliveryID)
	}
	if err != nil {
		return OutboxItem{}, fmt.Errorf("store: enqueue outbox: %w", err)
	}
	return it, nil
}

// outboxHead selects the pending items of o that may be attempted as far as their session is
// concerned: an item with a session key only while no earlier item with the same key is still
// pending, so one session's notifications are attempted strictly in order, on every attempt.
const outboxHead = `o.state = 'pending'
	AND (o.session_key = '' OR NOT EXISTS (SELECT 1 FROM outbox e
		WHERE e.session_key = o.session_key AND e.state = 'pending' AND e.id < o.id))`

// DueOutbox returns up to limit pending items due at now, longest due first. An item with a
// session key is held back while an earlier item with the same key is still pending, so one
// session's notifications are attempted strictly in order, on every attempt: an item is not
// tried until the one before it was delivered or given up.
//
// DueOutbox only looks: it does not claim, and it includes items claimed by a node.
func (s *Store) DueOutbox(now time.Time, limit int) ([]OutboxItem, error) {
	return s.outbox(`WHERE `+outboxHead+` AND o.next_at <= ? ORDER BY o.next_at, o.id LIMIT ?`, micros(now), limit)
}

// OutboxByDeliveryID returns one item, or an error wrapping ErrNotFound.
func (s *Store) OutboxByDeliveryID(deliveryID string) (OutboxItem, error) {
	items, err := s.outbox(`WHERE o.delivery_id = ?`, deliveryID)
	if err != nil {
		return OutboxItem{}, err
	}
	if len(items) == 0 {
		return OutboxItem{}, fmt.Errorf("store: outbox item %s: %w", deliveryID, ErrNotFound)
	}
	return items[0], nil
}

// CountOutbox returns how many items are in the given state.
func (s *Store) CountOutbox(state string) (int, error) {
	c, cancel := ctx()
	defer cancel()
	var n int
	err := s.queryRow(c, `SELECT COUNT(*) FROM outbox WHERE state = ?`, state).Scan(&n)
	return n, err
}

// PurgeOutbox deletes delivered and failed items last updated before t, with their attempts.
func (s *Store) PurgeOutbox(before time.Time) (int64, error) {
	c, cancel := ctx()
	defer cancel()
	if _, err := s.exec(c, `DELETE FROM outbox_attempts WHERE outbox_id IN
		(SELECT id FROM outbox WHERE state <> 'pending' AND updated_at < ?)`, micros(before)); err != nil {
		return 0, fmt.Errorf("store: purge outbox attempts: %w", err)
	}
	res, err := s.exec(c, `DELETE FROM outbox WHERE state <> 'pending' AND updated_at < ?`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("store: purge outbox: %w", err)
	}
	return res.RowsAffected()
}

// OutboxFilter selects outbox items for ListOutbox. Zero fields select everything.
type OutboxFilter struct {
	AppID     string
	SessionID string // the items queued for one session (their session key)
	State     string // OutboxPending, OutboxDelivered or OutboxFailed
	Limit     int    // at most this many (0: all)
}

// ListOutbox returns the items f selects, oldest first. Only the filters set are in the
// query, so that it uses the indexes (outbox_session, outbox_due).
func (s *Store) ListOutbox(f OutboxFilter) ([]OutboxItem, error) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"o.session_key", f.SessionID}, {"o.state", f.State}, {"o.app_id", f.AppID}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	q := ""
	if len(conds) > 0 {
		q = "WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY o.id"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	return s.outbox(q, args...)
}

// RetryOutbox makes a pending or failed item of appID ("": any app) due now; a failed one
// becomes pending again. It returns the item as it now is; an item that does not exist, is
// delivered, or belongs to another app is an error wrapping ErrNotFound.
func (s *Store) RetryOutbox(id int64, appID string, now time.Time) (OutboxItem, error) {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `UPDATE outbox SET state = 'pending', next_at = ?, updated_at = ?
		WHERE id = ? AND state IN ('pending', 'failed') AND (? = '' OR app_id = ?)`,
		micros(now), micros(now), id, appID, appID)
	if err != nil {
		return OutboxItem{}, fmt.Errorf("store: retry outbox %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return OutboxItem{}, fmt.Errorf("store: pending or failed outbox item %d: %w", id, ErrNotFound)
	}
	items, err := s.outbox(`WHERE o.id = ?`, id)
	if err != nil || len(items) == 0 {
		return OutboxItem{}, fmt.Errorf("store: outbox item %d: %w", id, errors.Join(err, ErrNotFound))
	}
	return items[0], nil
}

func (s *Store) outbox(where string, args ...any) ([]OutboxItem, error) {
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `SELECT `+outboxCols+` FROM outbox o `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return scanOutbox(rows)
}

// scanOutbox reads rows of outboxCols.
func scanOutbox(rows *sql.Rows) ([]OutboxItem, error) {
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var created, next, updated, claimed int64
		if err := rows.Scan(&it.ID, &it.DeliveryID, &it.AppID, &it.SessionKey, &it.Target, &it.Body, &it.Signature,
			&it.State, &it.Attempts, &created, &next, &updated, &it.LastError, &it.ClaimedBy, &claimed); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		it.CreatedAt, it.NextAt, it.UpdatedAt = fromMicros(created), fromMicros(next), fromMicros(updated)
		if claimed != 0 {
			it.ClaimedUntil = fromMicros(claimed)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return out, nil
}

// sortOutbox orders items as they are due: by NextAt, then ID.
func sortOutbox(items []OutboxItem) {
	sort.Slice(items, func(i, j int) bool {
		if !items[i].NextAt.Equal(items[j].NextAt) {
			return items[i].NextAt.Before(items[j].NextAt)
		}
		return items[i].ID < items[j].ID
	})
}
