package recording

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// Index keeps the rows of stored recordings, and knows the sessions they belong to
// (store.Store).
type Index interface {
	PutRecording(store.Recording) error
	Recording(id string) (store.Recording, error)
	Recordings(store.RecordingFilter) ([]store.Recording, int, error)
	DeleteRecording(id string) error
	RecordingsStoredBefore(t time.Time, limit int) ([]store.Recording, error)
	Session(id string) (store.SessionRow, error)
}

// Errors of the Catalog's lookups by app.
var (
	ErrNotFound = errors.New("recording: not found")              // no such recording (or session)
	ErrOtherApp = errors.New("recording: belongs to another app") // it exists, for another app
)

// CatalogConfig configures a Catalog.
type CatalogConfig struct {
	Index  Index
	Blobs  Blobs
	Signer Signer // signs download URLs (URL); may be nil for a catalog that only lists and deletes
	// Retention deletes recordings this long after they were stored (0: keep them forever).
	Retention time.Duration
	Log       *slog.Logger
}

// Catalog is the stored recordings: a row in the Index and a file in the blob store each. The
// Archive adds to it as recordings are stored; apps list, look up and delete theirs; and with
// a retention it deletes those stored longer ago than that, every little while.
type Catalog struct {
	cfg  CatalogConfig
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewCatalog makes a Catalog and, with a retention, starts deleting expired recordings until
// Close.
func NewCatalog(cfg CatalogConfig) (*Catalog, error) {
	if cfg.Index == nil || cfg.Blobs == nil {
		return nil, errors.New("recording: catalog needs an index and a blob store")
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("recording: negative retention %v", cfg.Retention)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Catalog{cfg: cfg, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Retention > 0 {
		go c.retain()
	} else {
		close(c.done)
	}
	return c, nil
}

// Close stops the retention and waits for a sweep in progress.
func (c *Catalog) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return nil
}

// add records a stored recording's row.
func (c *Catalog) add(r store.Recording) error {
	if err := c.cfg.Index.PutRecording(r); err != nil {
		return err
	}
	c.log.Info("recording stored", "id", r.ID, "session", r.SessionID, "kind", r.Kind, "duration", r.Duration, "bytes", r.Size)
	return nil
}

// owned returns recording id if it belongs to appID ("" : any app), else ErrNotFound or
// ErrOtherApp.
func (c *Catalog) owned(appID, id string) (store.Recording, error) {
	r, err := c.cfg.Index.Recording(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Recording{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	case err != nil:
		return store.Recording{}, err
	case appID != "" && r.AppID != appID:
		return store.Recording{}, fmt.Errorf("%w: %s", ErrOtherApp, id)
	}
	return r, nil
}

// CheckSession reports whether session id exists (else ErrNotFound) and belongs to appID
// ("": any app; else ErrOtherApp).
func (c *Catalog) CheckSession(appID, id string) error {
	s, err := c.cfg.Index.Session(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: session %s", ErrNotFound, id)
	case err != nil:
		return err
	case appID != "" && s.AppID != appID:
		return fmt.Errorf("%w: session %s", ErrOtherApp, id)
	}
	return nil
}

// List returns the recordings f selects, newest first, and how many it selects in all. With a
// session, the session must pass CheckSession for f.AppID.
func (c *Catalog) List(f store.RecordingFilter) ([]store.Recording, int, error) {
	if f.SessionID != "" {
		if err := c.CheckSession(f.AppID, f.SessionID); err != nil {
			return nil, 0, err
		}
	}
	return c.cfg.Index.Recordings(f)
}

// Get returns recording id of appID ("": any app) and a freshly signed URL of its file.
func (c *Catalog) Get(appID, id string) (store.Recording, string, error) {
	r, err := c.owned(appID, id)
	if err != nil {
		return r, "", err
	}
	if c.cfg.Signer == nil {
		return r, "", errors.New("recording: catalog has no signer")
	}
	return r, c.cfg.Signer.URL(r.Key, time.Now()), nil
}

// Delete deletes recording id of appID ("": any app): its file, then its row (a crash in
// between leaves a row whose deletion is simply repeated). Its URLs then answer 404.
func (c *Catalog) Delete(appID, id string) error {
	r, err := c.owned(appID, id)
	if err != nil {
		return err
	}
	return c.remove(r, "deleted")
}

func (c *Catalog) remove(r store.Recording, why string) error {
	if err := c.cfg.Blobs.Delete(r.Key); err != nil {
		return err
	}
	if err := c.cfg.Index.DeleteRecording(r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c.log.Info("recording "+why, "id", r.ID, "session", r.SessionID, "app", r.AppID)
	return nil
}

// expireBatch bounds the rows one query of Expire takes.
const expireBatch = 100

// Expire deletes every recording stored before cutoff and returns how many it deleted.
func (c *Catalog) Expire(cutoff time.Time) (int, error) {
	n := 0
	for {
		rs, err := c.cfg.Index.RecordingsStoredBefore(cutoff, expireBatch)
		if err != nil {
			return n, err
		}
		for _, r := range rs {
			if err := c.remove(r, "expired"); err != nil {
				return n, err
			}
			n++
		}
		if len(rs) < expireBatch {
			return n, nil
		}
	}
}

// sweepEvery is how often the retention looks for expired recordings: a tenth of the
// retention, between a second and ten minutes.
func sweepEvery(retention time.Duration) time.Duration {
	return min(max(retention/10, time.Second), 10*time.Minute)
}

func (c *Catalog) retain() {
	defer close(c.done)
	t := time.NewTicker(sweepEvery(c.cfg.Retention))
	defer t.Stop()
	for {
		if _, err := c.Expire(time.Now().Add(-c.cfg.Retention)); err != nil {
			c.log.Error("recording retention", "err", err)
		}
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}
