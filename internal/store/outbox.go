package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Outbox item states.
const (
	OutboxPending   = "pending"
	OutboxDelivered = "delivered"
	OutboxFailed    = "failed"
)

// OutboxItem is one notification in the durable outbox (see internal/notify). Body and
// Signature are computed once, at enqueue time, so every attempt sends the same bytes.
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
}

// Transient reports whether a failed write may succeed when tried again later: the disk is
// full, the database is locked or busy, an I/O error. A write refused for what it holds (a
// constraint, a value too big) is not transient.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return true // timeouts, a closed pool: nothing about the item itself
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
		return false
	}
	return true
}

const outboxCols = `id, delivery_id, app_id, session_key, target, body, signature, state, attempts,
	created_at, next_at, updated_at, last_error`

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
	res, err := s.exec(c, `INSERT INTO outbox (delivery_id, app_id, session_key, target, body, signature,
		state, attempts, created_at, next_at, updated_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, '')
		ON CONFLICT (delivery_id) DO NOTHING`,
		it.DeliveryID, it.AppID, it.SessionKey, it.Target, it.Body, it.Signature, it.State,
		micros(it.CreatedAt), micros(it.NextAt), micros(it.UpdatedAt))
	if err != nil {
		return OutboxItem{}, fmt.Errorf("store: enqueue outbox: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return s.OutboxByDeliveryID(it.DeliveryID)
	}
	if it.ID, err = res.LastInsertId(); err != nil {
		return OutboxItem{}, fmt.Errorf("store: enqueue outbox: %w", err)
	}
	return it, nil
}

// DueOutbox returns up to limit pending items due at now, longest due first. An item with a
// session key is held back while an earlier item with the same key is still pending, so one
// session's notifications are attempted strictly in order, on every attempt: an item is not
// tried until the one before it was delivered or given up.
func (s *Store) DueOutbox(now time.Time, limit int) ([]OutboxItem, error) {
	return s.outbox(`WHERE o.state = 'pending' AND o.next_at <= ?
		AND (o.session_key = '' OR NOT EXISTS (SELECT 1 FROM outbox e
			WHERE e.session_key = o.session_key AND e.state = 'pending' AND e.id < o.id))
		ORDER BY o.next_at, o.id LIMIT ?`, micros(now), limit)
}

// NextOutboxAt returns the earliest NextAt after t among pending items; ok is false when
// there is none.
func (s *Store) NextOutboxAt(t time.Time) (next time.Time, ok bool, err error) {
	c, cancel := ctx()
	defer cancel()
	var v *int64
	err = s.queryRow(c, `SELECT MIN(next_at) FROM outbox WHERE state = 'pending' AND next_at > ?`, micros(t)).Scan(&v)
	if err != nil || v == nil {
		return time.Time{}, false, err
	}
	return fromMicros(*v), true, nil
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

// MarkDelivered records a successful attempt; attempts is the total number made.
func (s *Store) MarkDelivered(id int64, attempts int) error {
	return s.mark(id, `state = 'delivered', attempts = ?, last_error = '', updated_at = ?`, attempts, micros(now()))
}

// MarkRetry records a failed attempt and when to try again.
func (s *Store) MarkRetry(id int64, attempts int, next time.Time, lastErr string) error {
	return s.mark(id, `attempts = ?, next_at = ?, last_error = ?, updated_at = ?`, attempts, micros(next), lastErr, micros(now()))
}

// MarkFailed records a failed attempt after which the item is given up.
func (s *Store) MarkFailed(id int64, attempts int, lastErr string) error {
	return s.mark(id, `state = 'failed', attempts = ?, last_error = ?, updated_at = ?`, attempts, lastErr, micros(now()))
}

// mark updates a pending item; an item that is not pending (or absent) is ErrNotFound.
func (s *Store) mark(id int64, set string, args ...any) error {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `UPDATE outbox SET `+set+` WHERE id = ? AND state = 'pending'`, append(args, id)...)
	if err != nil {
		return fmt.Errorf("store: outbox %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: pending outbox item %d: %w", id, ErrNotFound)
	}
	return nil
}

// RequeueOutbox makes every pending item due at now (used on start: after a restart nothing
// waits out an old backoff). It returns how many items are pending.
func (s *Store) RequeueOutbox(now time.Time) (int64, error) {
	c, cancel := ctx()
	defer cancel()
	if _, err := s.exec(c, `UPDATE outbox SET next_at = ? WHERE state = 'pending' AND next_at > ?`, micros(now), micros(now)); err != nil {
		return 0, fmt.Errorf("store: requeue outbox: %w", err)
	}
	var n int64
	err := s.queryRow(c, `SELECT COUNT(*) FROM outbox WHERE state = 'pending'`).Scan(&n)
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
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var created, next, updated int64
		if err := rows.Scan(&it.ID, &it.DeliveryID, &it.AppID, &it.SessionKey, &it.Target, &it.Body, &it.Signature,
			&it.State, &it.Attempts, &created, &next, &updated, &it.LastError); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		it.CreatedAt, it.NextAt, it.UpdatedAt = fromMicros(created), fromMicros(next), fromMicros(updated)
		out = append(out, it)
	}
	return out, rows.Err()
}
