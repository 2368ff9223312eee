package recording

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemIndex is an Index kept in memory, with the same order and filters as the store's: for
// tests of the Catalog and of what serves it, whose test binaries stay free of the database
// (its size makes fuzzing them crawl). The store's own Index is tested against the database.
type MemIndex struct {
	mu       sync.Mutex
	entries  map[string]Entry
	sessions map[string]string // session → app
}

var _ Index = (*MemIndex)(nil)

// AddSession makes session id, of app, known to SessionApp.
func (m *MemIndex) AddSession(id, app string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions == nil {
		m.sessions = map[string]string{}
	}
	m.sessions[id] = app
}

// Put stores an entry (Stored: now when zero), replacing the one with the same id.
func (m *MemIndex) Put(e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[string]Entry{}
	}
	if e.Stored.IsZero() {
		e.Stored = time.Now()
	}
	m.entries[e.ID] = e
	return nil
}

func (m *MemIndex) Get(id string) (Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[id]
	if !ok {
		return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return e, nil
}

func (m *MemIndex) List(f Filter) ([]Entry, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.entries {
		if (f.AppID == "" || e.AppID == f.AppID) && (f.SessionID == "" || e.SessionID == f.SessionID) &&
			(f.From.IsZero() || !e.Started.Before(f.From)) && (f.To.IsZero() || e.Started.Before(f.To)) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { // newest first
		return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(b.ID, a.ID))
	})
	total := len(out)
	if f.Limit > 0 {
		out = out[min(f.Offset, total):min(f.Offset+f.Limit, total)]
	}
	return out, total, nil
}

func (m *MemIndex) Delete(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[id]; !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	delete(m.entries, id)
	return nil
}

func (m *MemIndex) StoredBefore(t time.Time, limit int) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.entries {
		if e.Stored.Before(t) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Or(a.Stored.Compare(b.Stored), cmp.Compare(a.ID, b.ID)) })
	return out[:min(limit, len(out))], nil
}

func (m *MemIndex) SessionApp(id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	app, ok := m.sessions[id]
	if !ok {
		return "", fmt.Errorf("%w: session %s", ErrNotFound, id)
	}
	return app, nil
}
