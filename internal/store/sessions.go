package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SessionRow is one journaled session: the engine's state as an opaque JSON blob plus a few
// indexed columns. Node is the node carrying the session, its owner: only the owner may save
// it (see SaveSession).
type SessionRow struct {
	ID, AppID, State string
	Data             []byte
	UpdatedAt        time.Time
	Node             string
}

// ErrNotOwner is returned by SaveSession for a session another node owns (it took the session
// over from the saving node).
var ErrNotOwner = errors.New("store: session owned by another node")

// StateEnded is the session state UnfinishedSessions leaves out.
const StateEnded = "ended"

// SessionEvent is one step of a session's timeline: its number, time and event name, and the
// whole entry as opaque JSON.
type SessionEvent struct {
	Step  int
	At    time.Time
	Event string
	Data  []byte
}

// SaveSession inserts or replaces a session row, and adds events to its timeline, in one
// transaction. A zero UpdatedAt means now. An event whose step is already stored is kept as
// it was (a write repeated after a failure adds nothing twice). A stored session is replaced
// only by its owner, r.Node (or when it has none); otherwise nothing is written and the error
// wraps ErrNotOwner.
func (s *Store) SaveSession(r SessionRow, events ...SessionEvent) error {
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
	const upsert = `INSERT INTO sessions (id, app_id, state, data, updated_at, node_id) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET app_id = excluded.app_id, state = excluded.state,
			data = excluded.data, updated_at = excluded.updated_at, node_id = excluded.node_id
		WHERE sessions.node_id = excluded.node_id OR sessions.node_id = ''`
	args := []any{r.ID, r.AppID, r.State, r.Data, micros(r.UpdatedAt), r.Node}
	if len(events) == 0 {
		res, err := s.exec(c, upsert, args...)
		if err == nil {
			err = owned(res, r)
		}
		if err != nil {
			return fmt.Errorf("store: save session %s: %w", r.ID, err)
		}
		return nil
	}
	tx, err := s.db.BeginTx(c, nil)
	if err != nil {
		return fmt.Errorf("store: save session %s: %w", r.ID, err)
	}
	defer tx.Rollback()
	res, err := s.txExec(c, tx, upsert, args...)
	if err == nil {
		err = owned(res, r)
	}
	if err != nil {
		return fmt.Errorf("store: save session %s: %w", r.ID, err)
	}
	for _, e := range events {
		if e.Data == nil {
			e.Data = []byte{}
		}
		if _, err := s.txExec(c, tx, `INSERT INTO session_events (session_id, step, at, event, data) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (session_id, step) DO NOTHING`, r.ID, e.Step, micros(e.At), e.Event, e.Data); err != nil {
			return fmt.Errorf("store: save session %s: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: save session %s: %w", r.ID, err)
	}
	return nil
}

// owned turns an upsert of r that changed no row into ErrNotOwner.
func owned(res sql.Result, r SessionRow) error {
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	return fmt.Errorf("%w (saved by %q)", ErrNotOwner, r.Node)
}

// SessionEvents returns a session's timeline in step order.
func (s *Store) SessionEvents(id string) ([]SessionEvent, error) {
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `SELECT step, at, event, data FROM session_events WHERE session_id = ? ORDER BY step`, id)
	if err != nil {
		return nil, fmt.Errorf("store: session events: %w", err)
	}
	defer rows.Close()
	var out []SessionEvent
	for rows.Next() {
		var e SessionEvent
		var at int64
		if err := rows.Scan(&e.Step, &at, &e.Event, &e.Data); err != nil {
			return nil, fmt.Errorf("store: session events: %w", err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
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
	rows, err := s.query(c, `SELECT `+sessionCols+` FROM sessions `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: sessions: %w", err)
	}
	return scanSessions(rows)
}

const sessionCols = `id, app_id, state, data, updated_at, node_id`

// scanSessions reads rows of sessionCols.
func scanSessions(rows *sql.Rows) ([]SessionRow, error) {
	defer rows.Close()
	var out []SessionRow
	for rows.Next() {
		var r SessionRow
		var upd int64
		if err := rows.Scan(&r.ID, &r.AppID, &r.State, &r.Data, &upd, &r.Node); err != nil {
			return nil, fmt.Errorf("store: sessions: %w", err)
		}
		r.UpdatedAt = fromMicros(upd)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sessions: %w", err)
	}
	return out, nil
}

// RecentSessions returns the sessions of appID ("": of every app), the last updated first,
// skipping offset and at most limit of them.
func (s *Store) RecentSessions(appID string, limit, offset int) ([]SessionRow, error) {
	if appID == "" {
		return s.sessions(`ORDER BY updated_at DESC, id LIMIT ? OFFSET ?`, limit, offset)
	}
	return s.sessions(`WHERE app_id = ? ORDER BY updated_at DESC, id LIMIT ? OFFSET ?`, appID, limit, offset)
}
