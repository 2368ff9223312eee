package server

import (
	"os"
	"path/filepath"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
)

// openStore opens (creating) the database in the data directory.
func openStore(data string) (*store.Store, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	return store.Open(filepath.Join(data, "ivrd.db"))
}

// blobDir is the blob store of the recordings in data directory data.
func blobDir(data string) *blob.Local { return &blob.Local{Dir: filepath.Join(data, "recordings")} }

// WithCatalog opens the data directory's recordings catalog for an admin command (ivrd
// recording …), runs f on it and closes it. It lists and deletes; it signs no URLs.
func WithCatalog(data string, f func(*recording.Catalog) error) error {
	return WithStore(data, func(st *store.Store) error {
		c, err := recording.NewCatalog(recording.CatalogConfig{Index: index{st}, Blobs: blobDir(data)})
		if err != nil {
			return err
		}
		defer c.Close()
		return f(c)
	})
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
