package server

import (
	"os"
	"path/filepath"

	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/store"
)

// openStore opens the metadata store: the PostgreSQL database at storeURL, or with none the
// SQLite database in the data directory (created with it).
func openStore(data, storeURL string) (*store.Store, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	if storeURL != "" {
		return store.OpenPostgres(storeURL)
	}
	return store.Open(filepath.Join(data, "ivrd.db"))
}

// storeName names the store in logs: its URL without the password, or the SQLite file.
func storeName(cfg config.Config) string {
	if cfg.Store != "" {
		return store.RedactURL(cfg.Store)
	}
	return filepath.Join(cfg.Data, "ivrd.db")
}

// WithStore opens the store of an admin command (ivrd app …, ivrd number …): storeURL's
// PostgreSQL database, or the data directory's SQLite database; runs f on it and closes it. It
// works beside running servers.
func WithStore(data, storeURL string, f func(*store.Store) error) error {
	st, err := openStore(data, storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	return f(st)
}
