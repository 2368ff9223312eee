package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// App is an application: the owner of numbers, sessions and notifications. AccessToken is
// both the API credential and the key notifications are signed with.
type App struct {
	ID, Name, AccessToken string
	CreatedAt             time.Time
}

// randomHex returns 2n hex digits from crypto/rand.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("store: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// NewAppID returns a random app id: "AP" and 20 hex digits.
func NewAppID() string { return "AP" + randomHex(10) }

// NewAccessToken returns a random access token of 48 hex digits (192 bits).
func NewAccessToken() string { return randomHex(24) }

// CreateApp creates an app with a fresh random id and access token.
func (s *Store) CreateApp(name string) (App, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return App{}, errors.New("store: app name is empty")
	}
	a := App{ID: NewAppID(), Name: name, AccessToken: NewAccessToken(), CreatedAt: now()}
	c, cancel := ctx()
	defer cancel()
	_, err := s.exec(c, `INSERT INTO apps (id, name, access_token, created_at) VALUES (?, ?, ?, ?)`,
		a.ID, a.Name, a.AccessToken, micros(a.CreatedAt))
	if err != nil {
		return App{}, fmt.Errorf("store: create app: %w", err)
	}
	return a, nil
}

// App returns the app with the given id, or an error wrapping ErrNotFound.
func (s *Store) App(id string) (App, error) {
	c, cancel := ctx()
	defer cancel()
	var a App
	var created int64
	err := s.queryRow(c, `SELECT id, name, access_token, created_at FROM apps WHERE id = ?`, id).
		Scan(&a.ID, &a.Name, &a.AccessToken, &created)
	if err != nil {
		return App{}, notFound(err, "store: app "+id)
	}
	a.CreatedAt = fromMicros(created)
	return a, nil
}

// CountApps returns how many apps exist.
func (s *Store) CountApps() (int, error) {
	c, cancel := ctx()
	defer cancel()
	var n int
	err := s.queryRow(c, `SELECT COUNT(*) FROM apps`).Scan(&n)
	return n, err
}

// Apps returns every app, oldest first.
func (s *Store) Apps() ([]App, error) {
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `SELECT id, name, access_token, created_at FROM apps ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: apps: %w", err)
	}
	defer rows.Close()
	var out []App
	for rows.Next() {
		var a App
		var created int64
		if err := rows.Scan(&a.ID, &a.Name, &a.AccessToken, &created); err != nil {
			return nil, fmt.Errorf("store: apps: %w", err)
		}
		a.CreatedAt = fromMicros(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// RotateToken gives an app a fresh access token and returns the app with it. The old token
// stops working (a running server notices within its token cache's lifetime).
func (s *Store) RotateToken(id string) (App, error) {
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `UPDATE apps SET access_token = ? WHERE id = ?`, NewAccessToken(), id)
	if err != nil {
		return App{}, fmt.Errorf("store: rotate token of %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return App{}, fmt.Errorf("store: app %s: %w", id, ErrNotFound)
	}
	return s.App(id)
}
