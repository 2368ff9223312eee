package store

import (
	"errors"
	"fmt"
	"time"
)

// SessionRow is one journaled session: the engine's state as an opaque JSON blob plus a few
// indexed columns.
type SessionRow struct {
	ID, AppID, State string
	Data             []byte
	UpdatedAt        time.Time
}

// StateEnded is the session state UnfinishedSessions leaves out.
const StateEnded = "ended"

// SaveSession inserts or replaces a session row. A zero UpdatedAt means now.
func (s *Store) SaveSession(r SessionRow) error {
	if r.ID == "" {
		return errors.New("store: session id is empty")
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = now()
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	c, cancel := ctx()
	defer cancel()
	_, err := s.exec(c, `INSERT INTO sessions (id, app_id, state, data, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET app_id = excluded.app_id, state = excluded.state,
			data = excluded.data, updated_at = excluded.updated_at`,
		r.ID, r.AppID, r.State, r.Data, micros(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("store: save session %s: %w", r.ID, err)
	}
	return nil
}

// Session returns one session row, or an error wrapping ErrNotFound.
func (s *Store) Session(id string) (SessionRow, error) {
	rows, err := s.sessions(`WHERE id = ?`, id)
	if err != nil {
		return SessionRow{}, err
	}
	if len(rows) == 0 {
		return SessionRow{}, fmt.Errorf("store: session %s: %w", id, ErrNotFound)
	}
	return rows[0], nil
}

// UnfinishedSessions returns every session whose state is not "ended", oldest update first.
func (s *Store) UnfinishedSessions() ([]SessionRow, error) {
	return s.sessions(`WHERE state <> ? ORDER BY updated_at, id`, StateEnded)
}

func (s *Store) sessions(where string, args ...any) ([]SessionRow, error) {
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `SELECT id, app_id, state, data, updated_at FROM sessions `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: sessions: %w", err)
	}
	defer rows.Close()
	var out []SessionRow
	for rows.Next() {
		var r SessionRow
		var upd int64
		if err := rows.Scan(&r.ID, &r.AppID, &r.State, &r.Data, &upd); err != nil {
			return nil, fmt.Errorf("store: sessions: %w", err)
		}
		r.UpdatedAt = fromMicros(upd)
		out = append(out, r)
	}
	return out, rows.Err()
}
