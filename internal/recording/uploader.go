package recording

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"
)

// DefaultUploadInterval is how often the MP3 bytes a running recording gained go to Pieces.
// With the mixer's lag and the encoder's buffering, a node that dies loses at most about
// this plus half a second of each call, plus an upload's time on the way: under 5 s.
const DefaultUploadInterval = 3 * time.Second

// Bounds of the uploads.
const (
	maxPiece      = 1 << 20          // bytes in one piece (an upload that fell behind catches up in several)
	maxUploads    = 16               // piece uploads in flight at once, over every recording
	uploadTimeout = 30 * time.Second // one piece
)

// uploader copies running recordings to Pieces while their calls run.
type uploader struct {
	pieces   Pieces
	interval time.Duration
	log      *slog.Logger
	slots    chan struct{} // maxUploads
}

func newUploader(p Pieces, interval time.Duration, log *slog.Logger) *uploader {
	if interval <= 0 {
		interval = DefaultUploadInterval
	}
	return &uploader{pieces: p, interval: interval, log: log, slots: make(chan struct{}, maxUploads)}
}

// upload is one recording's copying: a goroutine of its own reads the .part file through a
// descriptor of its own and uploads what was appended since the last time, every interval.
// The mixer and the encoder threads that write the file never wait for it.
type upload struct {
	u      *uploader
	log    *slog.Logger // the call's
	key    string
	f      *os.File
	off    int64 // bytes uploaded
	cancel context.CancelFunc
	done   chan struct{}
}

// start begins uploading the recording written to part as pieces of key. It returns nil
// (and the recording goes on unuploaded, logged) when there is no uploader or part cannot be
// read.
func (u *uploader) start(key, part string, log *slog.Logger) *upload {
	if u == nil {
		return nil
	}
	f, err := os.Open(part)
	if err != nil {
		log.Error("recording: cannot upload pieces", "key", key, "err", err)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &upload{u: u, log: log, key: key, f: f, cancel: cancel, done: make(chan struct{})}
	go p.run(ctx)
	return p
}

func (p *upload) run(ctx context.Context) {
	defer close(p.done)
	defer p.f.Close()
	t := time.NewTicker(p.u.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := p.push(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			p.log.Warn("recording: piece upload failed, retrying", "key", p.key, "uploaded", p.off, "err", err)
		case err == nil && failing:
			p.log.Info("recording: piece uploads resumed", "key", p.key, "uploaded", p.off)
		}
		failing = err != nil
	}
}

// push uploads what the file gained since the last push, in pieces of at most maxPiece.
func (p *upload) push(ctx context.Context) error {
	st, err := p.f.Stat()
	if err != nil {
		return err
	}
	for size := st.Size(); p.off < size; {
		buf := make([]byte, min(size-p.off, maxPiece))
		n, err := p.f.ReadAt(buf, p.off)
		if err != nil && (err != io.EOF || n == 0) {
			return err
		}
		buf = buf[:n]
		select {
		case p.u.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		pctx, cancel := context.WithTimeout(ctx, uploadTimeout)
		err = p.u.pieces.PutPiece(pctx, p.key, p.off, buf)
		cancel()
		<-p.u.slots
		if err != nil {
			return err
		}
		p.off += int64(len(buf))
	}
	return nil
}

// stop ends the uploads (one in flight is abandoned: the finished recording is stored
// whole) and waits for the goroutine. It is a no-op on nil.
func (p *upload) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}
