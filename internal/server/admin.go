package server

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/recording"
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

// WithCatalog opens the recordings catalog of an admin command (ivrd recording …): in storeURL's
// PostgreSQL database or the data directory's SQLite database, with the files where serve keeps
// them (bs: the S3 bucket of --blob, or the data directory); runs f on it and closes it. It
// lists and deletes; it signs no URLs.
func WithCatalog(data, storeURL string, bs config.Blob, log *slog.Logger, f func(*recording.Catalog) error) error {
	rs, err := openRecordingStore(config.Config{Data: data, Blob: bs}, nil, log)
	if err != nil {
		return err
	}
	defer rs.close()
	return WithStore(data, storeURL, func(st *store.Store) error {
		c, err := recording.NewCatalog(recording.CatalogConfig{Index: index{st}, Blobs: rs.blobs})
		if err != nil {
			return err
		}
		defer c.Close()
		return f(c)
	})
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
