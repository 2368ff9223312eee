package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
)

// Kinds of recording: the block that made it.
const (
	KindMonitor = "monitor"
	KindRecord  = "record"
)

// Entry is one stored recording as the Catalog lists it: its metadata, and the key of its file
// in the blob store.
type Entry struct {
	ID        string
	AppID     string
	SessionID string
	Kind      string // KindMonitor or KindRecord
	Started   time.Time
	Duration  time.Duration // play time of the file
	Size      int64         // bytes
	Channels  int           // Mono or Dual
	Key       string        // blob store key
	Stored    time.Time     // when the file was stored (zero in Index.Put: now)
}

// Filter selects entries. Zero fields select everything.
type Filter struct {
	AppID     string
	SessionID string
	From, To  time.Time // started at or after From, and before To
	Limit     int       // at most this many (0: all), after skipping Offset
	Offset    int
}

// Index keeps the Catalog's entries (the store, through the server's adapter; MemIndex in
// tests). Lookups of what does not exist return an error wrapping ErrNotFound.
type Index interface {
	// Put stores an entry, replacing the one with the same id.
	Put(Entry) error
	Get(id string) (Entry, error)
	// List returns the entries f selects, newest first (by start, then id), and how many it
	// selects in all, Limit and Offset aside.
	List(f Filter) ([]Entry, int, error)
	Delete(id string) error
	// StoredBefore returns up to limit entries stored before t, oldest first.
	StoredBefore(t time.Time, limit int) ([]Entry, error)
	// SessionApp returns the app session id belongs to.
	SessionApp(id string) (string, error)
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

// add records a stored recording's entry.
func (c *Catalog) add(r Entry) error {
	if err := c.cfg.Index.Put(r); err != nil {
		return err
	}
	c.log.Info("recording stored", "id", r.ID, "session", r.SessionID, "kind", r.Kind, "duration", r.Duration, "bytes", r.Size)
	return nil
}

// owned returns recording id if it belongs to appID ("" : any app), else ErrNotFound or
// ErrOtherApp.
func (c *Catalog) owned(appID, id string) (Entry, error) {
	r, err := c.cfg.Index.Get(id)
	switch {
	case err != nil:
		return Entry{}, err
	case appID != "" && r.AppID != appID:
		return Entry{}, fmt.Errorf("%w: %s", ErrOtherApp, id)
	}
	return r, nil
}

// CheckSession reports whether session id exists (else ErrNotFound) and belongs to appID
// ("": any app; else ErrOtherApp).
func (c *Catalog) CheckSession(appID, id string) error {
	app, err := c.cfg.Index.SessionApp(id)
	switch {
	case err != nil:
		return err
	case appID != "" && app != appID:
		return fmt.Errorf("%w: session %s", ErrOtherApp, id)
	}
	return nil
}

// List returns the recordings f selects, newest first, and how many it selects in all. With a
// session, the session must pass CheckSession for f.AppID.
func (c *Catalog) List(f Filter) ([]Entry, int, error) {
	if f.SessionID != "" {
		if err := c.CheckSession(f.AppID, f.SessionID); err != nil {
			return nil, 0, err
		}
	}
	return c.cfg.Index.List(f)
}

// Get returns recording id of appID ("": any app) and a freshly signed URL of its file.
func (c *Catalog) Get(appID, id string) (Entry, string, error) {
	r, err := c.owned(appID, id)
	if err != nil {
		return r, "", err
	}
	if c.cfg.Signer == nil {
		return r, "", errors.New("recording: catalog has no signer")
	}
	return r, c.cfg.Signer.URL(r.Key, time.Now()), nil
}

// Open opens recording id of appID ("": any app) for reading: its entry and its file (close
// it). A file missing from the blob store is an error wrapping blob.ErrNotFound.
func (c *Catalog) Open(ctx context.Context, appID, id string) (Entry, *blob.Object, error) {
	r, err := c.owned(appID, id)
	if err != nil {
		return r, nil, err
	}
	obj, err := c.cfg.Blobs.Open(ctx, r.Key)
	return r, obj, err
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

func (c *Catalog) remove(r Entry, why string) error {
	if err := c.cfg.Blobs.Delete(r.Key); err != nil {
		return err
	}
	if err := c.cfg.Index.Delete(r.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	c.log.Info("recording "+why, "id", r.ID, "session", r.SessionID, "app", r.AppID)
	return nil
}

// expireBatch bounds the rows one query of Expire takes.
const expireBatch = 100

// Expire deletes every recording stored before cutoff and returns how many it deleted. One
// that cannot be deleted (its file, say) does not hold up the others; the failures are
// returned together, and tried again at the next sweep.
func (c *Catalog) Expire(cutoff time.Time) (int, error) {
	n := 0
	var errs []error
	for {
		rs, err := c.cfg.Index.StoredBefore(cutoff, expireBatch)
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		deleted := 0
		for _, r := range rs {
			if err := c.remove(r, "expired"); err != nil {
				errs = append(errs, fmt.Errorf("recording %s: %w", r.ID, err))
				continue
			}
			deleted++
		}
		n += deleted
		if len(rs) < expireBatch || deleted == 0 { // all done, or only failures left
			return n, errors.Join(errs...)
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
