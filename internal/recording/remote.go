package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
)

// Pieces keeps copies of running recordings in a shared store, piece by piece, so that any
// node can finish a recording whose node died (blob.S3).
type Pieces interface {
	// PutPiece stores data as the bytes of blob key from offset on.
	PutPiece(ctx context.Context, key string, offset int64, data []byte) error
	// ReadPieces writes key's pieces to w in order, up to the first gap, and returns how
	// many bytes it wrote (0: none).
	ReadPieces(ctx context.Context, key string, w io.Writer) (int64, error)
	// DeletePieces deletes key's pieces.
	DeletePieces(ctx context.Context, key string) error
}

// recoverTimeout bounds the store requests of one recording's recovery.
const recoverTimeout = 2 * time.Minute

// fromPieces rebuilds recording id from the pieces its node uploaded while the call ran:
// it concatenates them into a temporary file in the recorder's directory, cuts the trailing
// partial MP3 frame (as Recover does with a .part), renames it to the recording's .mp3 (so a
// crash from here on finds it as a finished recording) and stores it like any other. It
// needs nothing but the id: another node than the one that recorded the call can run it.
func (a *Archive) fromPieces(info Info) (string, time.Duration, error) {
	id := info.ID
	ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
	defer cancel()
	tmp, err := os.CreateTemp(a.rec.Dir(), ".pieces-*")
	if err != nil {
		return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	n, err := a.up.pieces.ReadPieces(ctx, key(id), tmp)
	var s Scan
	if err == nil && n > 0 {
		if _, err = tmp.Seek(0, io.SeekStart); err == nil {
			if s, err = ScanFrames(tmp); err == nil {
				err = cut(tmp, s)
			}
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("recording: recover %s from pieces: %w", id, err)
	}
	if n == 0 {
		a.log.Warn("recording missing after a crash", "id", id)
		return "", 0, nil
	}
	if s.Frames == 0 {
		a.log.Warn("recovered recording is empty", "id", id, "pieces_bytes", n)
		a.dropPieces(id)
		return "", 0, nil
	}
	path := a.rec.Path(id)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
	}
	syncDir(a.rec.Dir())
	if info.Start.IsZero() {
		if st, err := os.Stat(path); err == nil {
			info.Start = st.ModTime().Add(-s.Duration) // as good as it gets: the pieces carry no time
		}
	}
	url, err := a.store(info, Result{Path: path, Duration: s.Duration, Bytes: s.End, Channels: s.Channels})
	if url == "" {
		return "", 0, fmt.Errorf("recording: recover %s: %w", id, err)
	}
	a.log.Info("recording recovered from pieces", "id", id, "duration", s.Duration, "bytes", s.End, "pieces_bytes", n)
	return url, s.Duration, err
}

// dropPieces deletes recording id's pieces once the whole recording is stored. A failure
// only leaves garbage under pieces/ (logged).
func (a *Archive) dropPieces(id string) {
	if a.up == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
	defer cancel()
	if err := a.up.pieces.DeletePieces(ctx, key(id)); err != nil {
		a.log.Warn("recording stored, its pieces stay", "id", id, "err", err)
	}
}

// A call's end waits this long for a remote store that is unavailable, trying again after
// 1 s, 2 s, 4 s, ... (the Monitor notification waits with it): an outage shorter than that
// costs the app nothing. After it the MP3 stays in the recorder's directory (logged).
const (
	liveStoreFor   = time.Minute
	liveStoreFirst = time.Second
)

// storeLive is store for a call that just ended: it rides out a short outage of the store.
func (a *Archive) storeLive(info Info, res Result) (string, error) {
	deadline := time.Now().Add(liveStoreFor)
	for wait := liveStoreFirst; ; wait *= 2 {
		url, err := a.store(info, res)
		if url != "" || !errors.Is(err, blob.ErrUnavailable) || time.Now().Add(wait).After(deadline) {
			if url == "" {
				a.logger(info).Error("recording not stored; it stays on this node's disk", "id", info.ID, "file", res.Path, "err", err)
			}
			return url, err
		}
		a.logger(info).Warn("recording store unavailable, trying again", "id", info.ID, "in", wait, "err", err)
		time.Sleep(wait)
	}
}
