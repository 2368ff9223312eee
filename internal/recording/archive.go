package recording

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/calllog"
	"github.com/ivrd/ivrd/internal/metrics"
)

// Blobs is where finished recordings are kept (blob.Local, blob.S3).
type Blobs interface {
	// PutFile moves the file src into the store under key.
	PutFile(key, src string) error
	// Open opens a stored blob; an error wrapping blob.ErrNotFound when it is not stored.
	Open(ctx context.Context, key string) (*blob.Object, error)
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
	// Pieces, when set, receives each running recording's MP3 in pieces while its call runs
	// (every UploadInterval, default DefaultUploadInterval), so that any node can finish the
	// recording if this one dies (see Recover). nil: recordings stay on this node's disk until
	// they finish.
	Pieces         Pieces
	UploadInterval time.Duration
	Metrics        *metrics.Recordings // recordings made; nil: not counted
}

// Archive owns a recording's life from start to signed URL: it starts recordings in the
// Recorder (and their uploads to Pieces); finishing one moves its MP3 into the blob store,
// adds it to the Catalog and signs its URL; and after a crash it finds a recording again in
// whatever state the crash left it (being written, finished but not stored, stored, or only
// uploaded in pieces) and completes it the same way.
type Archive struct {
	rec     *Recorder
	blobs   Blobs
	signer  Signer
	catalog *Catalog
	log     *slog.Logger
	up      *uploader // nil without Pieces
	metrics *metrics.Recordings
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
	a := &Archive{rec: cfg.Recorder, blobs: cfg.Blobs, signer: cfg.Signer, catalog: cfg.Catalog, log: log, metrics: cfg.Metrics}
	if cfg.Pieces != nil {
		a.up = newUploader(cfg.Pieces, cfg.UploadInterval, log)
	}
	return a, nil
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
	Kind      string       // KindMonitor or KindRecord
	Start     time.Time    // the file's time zero; in Recover, zero when not known
	Channels  int          // Mono or Dual (Start; Recover reads it from the file)
	Log       *slog.Logger // the call's logger, for a live recording's lines (nil: the archive's, with the session)
}

// logger is where a recording's lines go: its call's logger, else the archive's naming the
// session.
func (a *Archive) logger(info Info) *slog.Logger {
	switch {
	case info.Log != nil:
		return info.Log
	case info.SessionID != "":
		return a.log.With(calllog.Key, info.SessionID)
	}
	return a.log
}

// Take is a recording running in the Archive. It is an audio.Tap.
type Take struct {
	*Recording
	a    *Archive
	info Info
	up   *upload // nil without Pieces
}

// Start begins a recording as info describes it.
func (a *Archive) Start(info Info) (*Take, error) {
	log := a.logger(info)
	r, err := a.rec.StartLogged(info.ID, info.Start, info.Channels, log)
	if err != nil {
		return nil, err
	}
	a.metrics.Started(info.Kind)
	return &Take{Recording: r, a: a, info: info, up: a.up.start(key(info.ID), r.PartPath(), log)}, nil
}

// Finish ends the recording at end, stores the MP3 and returns its signed URL. If writing
// failed mid-call, what reached the disk is still stored and its URL returned with the error.
func (t *Take) Finish(end time.Time) (url string, err error) {
	t.up.stop()
	res, ferr := t.Recording.Finish(end)
	if errors.Is(ferr, ErrFinished) {
		return "", ferr // counted by the first Finish
	}
	defer func() {
		stored := int64(0)
		if url != "" {
			stored = res.Bytes
		}
		t.a.metrics.Ended(t.info.Kind, stored, err != nil)
	}()
	if res.Path == "" {
		return "", ferr
	}
	url, err = t.a.storeLive(t.info, res)
	return url, errors.Join(ferr, err)
}

// Discard ends the recording without storing it, for a session another node took over (it
// stored the recording from the uploaded pieces): no piece is uploaded any more, none is
// dropped, and the local file is removed.
func (t *Take) Discard() {
	t.up.stop()
	res, err := t.Recording.Finish(time.Now())
	if errors.Is(err, ErrFinished) {
		return
	}
	t.a.metrics.Ended(t.info.Kind, 0, false)
	if res.Path != "" {
		if err := os.Remove(res.Path); err != nil {
			t.a.logger(t.info).Warn("recording: discard", "id", t.info.ID, "err", err)
		}
	}
}

// store moves a finished file into the blob store, drops its pieces, catalogues it and signs
// its URL.
func (a *Archive) store(info Info, res Result) (string, error) {
	if err := a.blobs.PutFile(key(info.ID), res.Path); err != nil {
		return "", err
	}
	a.dropPieces(info.ID)
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
// finished but not stored is stored; one already stored is signed again; one this node has no
// file of (its call ran on a node that died) is rebuilt from the pieces uploaded while it ran
// (fromPieces). Each is catalogued (again). url is "" (and err nil) when nothing of it exists
// or nothing was recorded (no whole frame); an error (the blob store unavailable) leaves it
// for a later attempt. When info.Start is zero the start is taken as the file's last write
// less its length.
func (a *Archive) Recover(info Info) (url string, length time.Duration, err error) {
	id := info.ID
	stored := false
	var written time.Time // the file's last write
	res, err := Recover(a.rec.PartPath(id))
	if errors.Is(err, fs.ErrNotExist) { // finished before the crash, maybe stored too
		res, err = describe(a.rec.Path(id))
		if errors.Is(err, fs.ErrNotExist) {
			res, written, err = a.inStore(id)
			if err == nil && res.Path == "" && a.up != nil {
				return a.fromPieces(info)
			}
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
		a.dropPieces(id)
		return "", 0, nil
	}
	if !stored {
		if st, err := os.Stat(res.Path); err == nil {
			written = st.ModTime()
		}
	}
	if info.Start.IsZero() && !written.IsZero() {
		info.Start = written.Add(-res.Duration)
	}
	if stored {
		a.dropPieces(id) // left if the crash came between storing and dropping them
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

// describe reads what a finished recording's file holds; a file without a whole frame holds
// nothing (Duration 0).
func describe(path string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	s, err := ScanFrames(f)
	if errors.Is(err, ErrNoFrames) {
		return Result{Path: path}, nil
	}
	return Result{Path: path, Duration: s.Duration, Bytes: s.End, Channels: s.Channels}, err
}

// inStore describes recording id's object in the blob store and when it was written; Path
// (the key, as a marker) is "" when it is not stored. Other failures of the store are errors.
func (a *Archive) inStore(id string) (Result, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
	defer cancel()
	f, err := a.blobs.Open(ctx, key(id))
	if errors.Is(err, blob.ErrNotFound) {
		return Result{}, time.Time{}, nil
	}
	if err != nil {
		return Result{}, time.Time{}, err
	}
	defer f.Close()
	s, err := ScanFrames(f)
	return Result{Path: key(id), Duration: s.Duration, Bytes: s.End, Channels: s.Channels}, f.ModTime, err
}
