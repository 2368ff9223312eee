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
)

// Blobs is where finished recordings are kept (blob.Local, blob.S3).
type Blobs interface {
	// PutFile moves the file src into the store under key.
	PutFile(key, src string) error
	// Open opens a stored blob; an error wrapping blob.ErrNotFound when it is not stored.
	Open(ctx context.Context, key string) (*blob.Object, error)
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
	Log      *slog.Logger
	// Pieces, when set, receives each running recording's MP3 in pieces while its call runs
	// (every UploadInterval, default DefaultUploadInterval), so that any node can finish the
	// recording if this one dies (see Recover). nil: recordings stay on this node's disk until
	// they finish.
	Pieces         Pieces
	UploadInterval time.Duration
}

// Archive owns a recording's life from start to signed URL: it starts recordings in the
// Recorder (and their uploads to Pieces); finishing one moves its MP3 into the blob store and
// signs its URL; and after a crash it finds a recording again in whatever state the crash
// left it (being written, finished but not stored, stored, or only uploaded in pieces) and
// completes it the same way.
type Archive struct {
	rec    *Recorder
	blobs  Blobs
	signer Signer
	log    *slog.Logger
	up     *uploader // nil without Pieces
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
	a := &Archive{rec: cfg.Recorder, blobs: cfg.Blobs, signer: cfg.Signer, log: log}
	if cfg.Pieces != nil {
		a.up = newUploader(cfg.Pieces, cfg.UploadInterval, log)
	}
	return a, nil
}

// Close releases nothing today; recordings still running are finished by their owners.
func (a *Archive) Close() error { return nil }

// key is recording id's name in the blob store.
func key(id string) string { return id + ".mp3" }

// Take is a recording running in the Archive. It is an audio.Tap.
type Take struct {
	*Recording
	a  *Archive
	up *upload // nil without Pieces
}

// Start begins recording id, whose time zero is start.
func (a *Archive) Start(id string, start time.Time) (*Take, error) {
	r, err := a.rec.Start(id, start)
	if err != nil {
		return nil, err
	}
	return &Take{Recording: r, a: a, up: a.up.start(key(id), r.PartPath())}, nil
}

// Finish ends the recording at end, stores the MP3 and returns its signed URL. If writing
// failed mid-call, what reached the disk is still stored and its URL returned with the error.
func (t *Take) Finish(end time.Time) (string, error) {
	t.up.stop()
	res, ferr := t.Recording.Finish(end)
	if res.Path == "" {
		return "", ferr
	}
	url, err := t.a.storeLive(t.ID(), res.Path)
	if err != nil {
		return "", errors.Join(ferr, err)
	}
	return url, ferr
}

// store moves a finished file into the blob store, drops its pieces and signs its URL.
func (a *Archive) store(id, path string) (string, error) {
	if err := a.blobs.PutFile(key(id), path); err != nil {
		return "", err
	}
	a.dropPieces(id)
	return a.signer.URL(key(id), time.Now()), nil
}

// Recover completes recording id after a crash and returns its signed URL and length. A
// recording still being written is cut at its last whole MP3 frame; one finished but not
// stored is stored; one already stored is signed again; one this node has no file of (its
// call ran on a node that died) is rebuilt from the pieces uploaded while it ran
// (fromPieces). url is "" (and err nil) when nothing of it exists or nothing was recorded
// (no whole frame); an error (the blob store unavailable) leaves it for a later attempt.
func (a *Archive) Recover(id string) (url string, length time.Duration, err error) {
	res, err := Recover(a.rec.PartPath(id))
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist): // finished before the crash, maybe stored too
		res.Path = a.rec.Path(id)
		res.Duration, err = MP3Duration(res.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return a.stored(id)
		}
		if errors.Is(err, ErrNoFrames) {
			res.Duration, err = 0, nil
		}
		if err != nil {
			return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
		}
	default:
		return "", 0, err
	}
	if res.Duration == 0 {
		a.log.Warn("recovered recording is empty", "id", id)
		_ = os.Remove(res.Path)
		a.dropPieces(id)
		return "", 0, nil
	}
	if url, err = a.store(id, res.Path); err != nil {
		return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
	}
	a.log.Info("recording recovered", "id", id, "duration", res.Duration)
	return url, res.Duration, nil
}

// stored signs recording id's URL if the blob store has it, else rebuilds it from its pieces.
func (a *Archive) stored(id string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
	defer cancel()
	f, err := a.blobs.Open(ctx, key(id))
	if errors.Is(err, blob.ErrNotFound) {
		if a.up != nil {
			return a.fromPieces(id)
		}
		a.log.Warn("recording missing after a crash", "id", id)
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
	}
	s, err := ScanFrames(f)
	f.Close()
	if err != nil {
		return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
	}
	a.dropPieces(id) // left if the crash came between storing and dropping them
	return a.signer.URL(key(id), time.Now()), s.Duration, nil
}
