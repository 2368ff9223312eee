package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Recording is one stored recording: its metadata, and the key of its file in the blob store.
type Recording struct {
	ID        string
	AppID     string
	SessionID string
	Kind      string // "monitor" or "record" (the table refuses others)
	StartedAt time.Time
	Duration  time.Duration // play time of the file
	Size      int64         // bytes
	Channels  int           // 1 (mono) or 2 (dual)
	Key       string        // blob store key
	StoredAt  time.Time     // when the file was stored (zero in PutRecording: now)
}

// RecordingFilter selects recordings. Zero fields select everything.
type RecordingFilter struct {
	AppID     string
	SessionID string
	From, To  time.Time // started at or after From, and before To
	Limit     int       // at most this many rows (0: all), after skipping Offset
	Offset    int
}

const recordingColumns = `id, app_id, session_id, kind, started_at, duration_us, size_bytes, channels, storage_key, stored_at`

// PutRecording stores a recording's row, replacing the row with the same id (recovery may
// store a recording again after a crash).
func (s *Store) PutRecording(r Recording) error {
	if r.ID == "" || r.Key == "" {
		return errors.New("store: recording needs an id and a storage key")
	}
	if r.StoredAt.IsZero() {
		r.StoredAt = now()
	}
	c, cancel := ctx()
	defer cancel()
	_, err := s.exec(c, `INSERT INTO recordings (`+recordingColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET app_id = excluded.app_id, session_id = excluded.session_id, kind = excluded.kind,
			started_at = excluded.started_at, duration_us = excluded.duration_us, size_bytes = excluded.size_bytes,
			channels = excluded.channels, storage_key = excluded.storage_key, stored_at = excluded.stored_at`,
		r.ID, r.AppID, r.SessionID, r.Kind, micros(r.StartedAt), r.Duration.Microseconds(), r.Size, r.Channels, r.Key, micros(r.StoredAt))
	if err != nil {
		return fmt.Errorf("store: put recording %s: %w", r.ID, err)
	}
	return nil
}

// Recording returns one recording, or an error wrapping ErrNotFound.
func (s *Store) Recording(id string) (Recording, error) {
	rs, err := s.recordings(`WHERE id = ?`, id)
	if err != nil {
		return Recording{}, err
	}
	if len(rs) == 0 {
		return Recording{}, fmt.Errorf("store: recording %s: %w", id, ErrNotFound)
	}
	return rs[0], nil
}

// Recordings returns the recordings f selects, newest first (by start, then id), and how
// many it selects in all, Limit and Offset aside.
func (s *Store) Recordings(f RecordingFilter) ([]Recording, int, error) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if f.AppID != "" {
		add("app_id = ?", f.AppID)
	}
	if f.SessionID != "" {
		add("session_id = ?", f.SessionID)
	}
	if !f.From.IsZero() {
		add("started_at >= ?", micros(f.From))
	}
	if !f.To.IsZero() {
		add("started_at < ?", micros(f.To))
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	c, cancel := ctx()
	defer cancel()
	var total int
	if err := s.queryRow(c, `SELECT COUNT(*) FROM recordings `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: recordings: %w", err)
	}
	q := where + ` ORDER BY started_at DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, max(f.Offset, 0))
	}
	rs, err := s.recordings(q, args...)
	return rs, total, err
}

// RecordingsStoredBefore returns up to limit recordings stored before t, oldest first.
func (s *Store) RecordingsStoredBefore(t time.Time, limit int) ([]Recording, error) {
	return s.recordings(`WHERE stored_at < ? ORDER BY stored_at, id LIMIT ?`, micros(t), limit)
}

// DeleteRecording removes a recording's row; an error wrapping ErrNotFound when there is none.
func (s *Store) DeleteRecording(id string) error {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `DELETE FROM recordings WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: delete recording %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: recording %s: %w", id, ErrNotFound)
	}
	return nil
}

func (s *Store) recordings(where string, args ...any) ([]Recording, error) {
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `SELECT `+recordingColumns+` FROM recordings `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: recordings: %w", err)
	}
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		var r Recording
		var started, dur, stored int64
		if err := rows.Scan(&r.ID, &r.AppID, &r.SessionID, &r.Kind, &started, &dur, &r.Size, &r.Channels, &r.Key, &stored); err != nil {
			return nil, fmt.Errorf("store: recordings: %w", err)
		}
		r.StartedAt, r.Duration, r.StoredAt = fromMicros(started), time.Duration(dur)*time.Microsecond, fromMicros(stored)
		out = append(out, r)
	}
	return out, rows.Err()
}
