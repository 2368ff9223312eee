package store

import (
	"errors"
	"fmt"
	"strings"
)

// Number routes calls to a phone number to an app. Number is stored in E.164 with a leading
// '+'; "6561234567", "+6561234567" and "+65 6123-4567" are the same number.
type Number struct {
	Number, AppID, NotifyURL string
}

// ErrBadNumber is returned for a number that is not 1–15 digits with an optional '+'.
var ErrBadNumber = errors.New("store: not an E.164 number")

// NormalizeNumber returns num in E.164 form with a leading '+'. Spaces, dashes, dots and
// parentheses are ignored; what remains must be an optional '+' and 1–15 digits.
func NormalizeNumber(num string) (string, error) {
	var b strings.Builder
	b.WriteByte('+')
	digits := 0
	for i, r := range strings.TrimSpace(num) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
			digits++
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("%w: %q", ErrBadNumber, num)
		}
	}
	if digits == 0 || digits > 15 {
		return "", fmt.Errorf("%w: %q", ErrBadNumber, num)
	}
	return b.String(), nil
}

// AddNumber routes a number to an app, replacing any earlier route of that number. The app
// must exist (an error wrapping ErrNotFound otherwise).
func (s *Store) AddNumber(n Number) error {
	num, err := NormalizeNumber(n.Number)
	if err != nil {
		return err
	}
	if _, err := s.App(n.AppID); err != nil {
		return err
	}
	c, cancel := ctx()
	defer cancel()
	_, err = s.exec(c, `INSERT INTO numbers (number, app_id, notify_url) VALUES (?, ?, ?)
		ON CONFLICT (number) DO UPDATE SET app_id = excluded.app_id, notify_url = excluded.notify_url`,
		num, n.AppID, n.NotifyURL)
	if err != nil {
		return fmt.Errorf("store: add number %s: %w", num, err)
	}
	return nil
}

// LookupNumber returns the route of a number given with or without '+'. A number that is not
// routed, or not a number at all (a SIP user such as "alice"), is an error wrapping ErrNotFound.
func (s *Store) LookupNumber(num string) (Number, error) {
	norm, err := NormalizeNumber(num)
	if err != nil {
		return Number{}, fmt.Errorf("store: number %q: %w", num, ErrNotFound)
	}
	c, cancel := ctx()
	defer cancel()
	var n Number
	err = s.queryRow(c, `SELECT number, app_id, notify_url FROM numbers WHERE number = ?`, norm).
		Scan(&n.Number, &n.AppID, &n.NotifyURL)
	if err != nil {
		return Number{}, notFound(err, "store: number "+norm)
	}
	return n, nil
}

// Numbers returns every routed number, in order.
func (s *Store) Numbers() ([]Number, error) {
	c, cancel := ctx()
	defer cancel()
	rows, err := s.query(c, `SELECT number, app_id, notify_url FROM numbers ORDER BY number`)
	if err != nil {
		return nil, fmt.Errorf("store: numbers: %w", err)
	}
	defer rows.Close()
	var out []Number
	for rows.Next() {
		var n Number
		if err := rows.Scan(&n.Number, &n.AppID, &n.NotifyURL); err != nil {
			return nil, fmt.Errorf("store: numbers: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// RemoveNumber stops routing a number (given with or without '+'); calls to it then get 404.
// A number that is not routed is an error wrapping ErrNotFound.
func (s *Store) RemoveNumber(num string) error {
	norm, err := NormalizeNumber(num)
	if err != nil {
		return err
	}
	c, cancel := ctx()
	defer cancel()
	res, err := s.exec(c, `DELETE FROM numbers WHERE number = ?`, norm)
	if err != nil {
		return fmt.Errorf("store: remove number %s: %w", norm, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: number %s: %w", norm, ErrNotFound)
	}
	return nil
}
