package recording

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// Blobs is where finished recordings are kept (blob.Local).
type Blobs interface {
	// PutFile moves the file src into the store under key.
	PutFile(key, src string) error
	// Open opens a stored blob; an error when it is not stored.
	Open(key string) (*os.File, error)
	// Delete removes a stored blob; nil when it is not stored.
	Delete(key string) error
}

// Signer makes a stored recording's download URL (blob.Signer).
type Signer interface {
	URL(key string, now time.Time) string
}

// ArchiveConfig configures an Archive.
type ArchiveConfig struct {
	Recorder *Recorder // where recordings are written while calls run
	Blobs    Blobs     // where finished recordings go
	Signer   Signer    // signs their URLs
	Catalog  *Catalog  // lists what is stored (nil: nothing is listed)
	Log      *slog.Logger
}

// Archive owns a recording's life from start to signed URL: it starts recordings in the
// Recorder; finishing one moves its MP3 into the blob store, adds it to the Catalog and signs
// its URL; and after a crash it finds a recording again in whatever state the crash left it
// (being written, finished but not stored, or stored) and completes it the same way.
type Archive struct {
	rec     *Recorder
	blobs   Blobs
	signer  Signer
	catalog *Catalog
	log     *slog.Logger
}

// NewArchive makes an Archive.
func NewArchive(cfg ArchiveConfig) (*Archive, error) {
	if cfg.Recorder == nil || cfg.Blobs == nil || cfg.Signer == nil {
		return nil, errors.New("recording: archive needs a recorder, a blob store and a signer")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Archive{rec: cfg.Recorder, blobs: cfg.Blobs, signer: cfg.Signer, catalog: cfg.Catalog, log: log}, nil
}

// Close releases nothing today; recordings still running are finished by their owners.
func (a *Archive) Close() error { return nil }

// key is recording id's name in the blob store.
func key(id string) string { return id + ".mp3" }

// Info describes a recording: what the Catalog lists it as.
type Info struct {
	ID        string
	AppID     string
	SessionID string
	Kind      string    // KindMonitor or KindRecord
	Start     time.Time // the file's time zero; in Recover, zero when not known
	Channels  int       // Mono or Dual (Start; Recover reads it from the file)
}

// Take is a recording running in the Archive. It is an audio.Tap.
type Take struct {
	*Recording
	a    *Archive
	info Info
}

// Start begins a recording as info describes it.
func (a *Archive) Start(info Info) (*Take, error) {
	r, err := a.rec.Start(info.ID, info.Start, info.Channels)
	if err != nil {
		return nil, err
	}
	return &Take{Recording: r, a: a, info: info}, nil
}

// Finish ends the recording at end, stores the MP3 and returns its signed URL. If writing
// failed mid-call, what reached the disk is still stored and its URL returned with the error.
func (t *Take) Finish(end time.Time) (string, error) {
	res, ferr := t.Recording.Finish(end)
	if res.Path == "" {
		return "", ferr
	}
	url, err := t.a.store(t.info, res)
	return url, errors.Join(ferr, err)
}

// store moves a finished file into the blob store, catalogues it and signs its URL.
func (a *Archive) store(info Info, res Result) (string, error) {
	if err := a.blobs.PutFile(key(info.ID), res.Path); err != nil {
		return "", err
	}
	return a.catalogue(info, res)
}

// catalogue adds a stored recording to the catalog and signs its URL. A recording stored
// but not catalogued still has its URL returned, with the error.
func (a *Archive) catalogue(info Info, res Result) (string, error) {
	k := key(info.ID)
	url := a.signer.URL(k, time.Now())
	if a.catalog == nil {
		return url, nil
	}
	err := a.catalog.add(Entry{ID: info.ID, AppID: info.AppID, SessionID: info.SessionID, Kind: info.Kind,
		Started: info.Start, Duration: res.Duration, Size: res.Bytes, Channels: res.Channels, Key: k})
	if err != nil {
		err = fmt.Errorf("recording: catalog %s: %w", info.ID, err)
	}
	return url, err
}

// Recover completes the recording info describes after a crash and returns its signed URL
// and length. A recording still being written is cut at its last whole MP3 frame; one
// finished but not stored is stored; one already stored is signed again. Each is catalogued
// (again). url is "" (and err nil) when nothing of it exists or nothing was recorded (no
// whole frame). When info.Start is zero the start is taken as the file's last write less its
// length.
func (a *Archive) Recover(info Info) (url string, length time.Duration, err error) {
	id := info.ID
	stored := false
	res, err := Recover(a.rec.PartPath(id))
	if errors.Is(err, fs.ErrNotExist) { // finished before the crash, maybe stored too
		res, err = describe(a.rec.Path(id))
		if errors.Is(err, fs.ErrNotExist) {
			res, err = a.inStore(id)
			stored = true
		}
	}
	switch {
	case err != nil:
		return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
	case res.Path == "":
		a.log.Warn("recording missing after a crash", "id", id)
		return "", 0, nil
	case res.Duration == 0 && !stored:
		a.log.Warn("recovered recording is empty", "id", id)
		_ = os.Remove(res.Path)
		return "", 0, nil
	}
	if info.Start.IsZero() {
		if st, err := os.Stat(res.Path); err == nil {
			info.Start = st.ModTime().Add(-res.Duration)
		}
	}
	if stored {
		url, err = a.catalogue(info, res)
	} else {
		url, err = a.store(info, res)
	}
	if url == "" {
		return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
	}
	a.log.Info("recording recovered", "id", id, "duration", res.Duration)
	return url, res.Duration, err
}

// describe reads what a finished recording's file holds.
func describe(path string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	s, err := ScanFrames(f)
	return Result{Path: path, Duration: s.Duration, Bytes: s.End, Channels: s.Channels}, err
}

// inStore describes recording id's file in the blob store; Path is "" when it is not there.
func (a *Archive) inStore(id string) (Result, error) {
	f, err := a.blobs.Open(key(id))
	if err != nil {
		return Result{}, nil
	}
	defer f.Close()
	s, err := ScanFrames(f)
	return Result{Path: f.Name(), Duration: s.Duration, Bytes: s.End, Channels: s.Channels}, err
}
