package store

import (
	"fmt"
	"time"
)

// OutboxAttempt is one delivery attempt of an outbox item: when it was made, how long it
// took, the HTTP status the app answered (0 when none came: refused, timed out, ...) and the
// error, if it failed.
type OutboxAttempt struct {
	OutboxID   int64
	Attempt    int // 1, 2, ...
	At         time.Time
	Duration   time.Duration
	StatusCode int
	Error      string
}

// AddOutboxAttempt records one attempt. Recording the same attempt again changes nothing.
func (s *Store) AddOutboxAttempt(a OutboxAttempt) error {
	c, cancel := ctx()
	defer cancel()
	_, err := s.exec(c, `INSERT INTO outbox_attempts (outbox_id, attempt, at, duration_us, status_code, error)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (outbox_id, attempt) DO NOTHING`,
		a.OutboxID, a.Attempt, micros(a.At), a.Duration.Microseconds(), a.StatusCode, a.Error)
	if err != nil {
		return fmt.Errorf("store: outbox %d attempt %d: %w", a.OutboxID, a.Attempt, err)
	}
	return nil
}

// OutboxAttempts returns an item's recorded attempts, in order.
func (s *Store) OutboxAttempts(outboxID int64) ([]OutboxAttempt, error) {
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `SELECT outbox_id, attempt, at, duration_us, status_code, error FROM outbox_attempts
		WHERE outbox_id = ? ORDER BY attempt`, outboxID)
	if err != nil {
		return nil, fmt.Errorf("store: outbox attempts: %w", err)
	}
	defer rows.Close()
	var out []OutboxAttempt
	for rows.Next() {
		var a OutboxAttempt
		var at, dur int64
		if err := rows.Scan(&a.OutboxID, &a.Attempt, &at, &dur, &a.StatusCode, &a.Error); err != nil {
			return nil, fmt.Errorf("store: outbox attempts: %w", err)
		}
		a.At, a.Duration = fromMicros(at), time.Duration(dur)*time.Microsecond
		out = append(out, a)
	}
	return out, rows.Err()
}
