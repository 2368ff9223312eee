package server

import (
	"os"
	"path/filepath"

	"github.com/ivrd/ivrd/internal/store"
)

// openStore opens (creating) the database in the data directory.
func openStore(data string) (*store.Store, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	return store.Open(filepath.Join(data, "ivrd.db"))
}

// WithStore opens the data directory's database for an admin command (ivrd app …, ivrd
// number …), runs f on it and closes it. It works beside a running server (SQLite allows it).
func WithStore(data string, f func(*store.Store) error) error {
	st, err := openStore(data)
	if err != nil {
		return err
	}
	defer st.Close()
	return f(st)
}
