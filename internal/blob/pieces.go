package blob

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
)

// Pieces of a blob being written: while a call is recorded its MP3 grows on the recording
// node's disk, and the bytes added since the last upload go to the store every few seconds as
// one more object,
//
//	pieces/<key>/<offset>
//
// where offset (16 decimal digits, so names sort in order) is where the piece's bytes start in
// the blob. Whoever finishes the blob after the node died reads the pieces back in order
// (ReadPieces); once the whole blob is stored the pieces are deleted (DeletePieces).

// piecesPrefix is where the pieces of key are.
func piecesPrefix(key string) string { return "pieces/" + key + "/" }

// pieceName is the object holding key's bytes from offset on.
func pieceName(key string, offset int64) string {
	return piecesPrefix(key) + fmt.Sprintf("%016d", offset)
}

// PutPiece stores data as the piece of key starting at offset.
func (s *S3) PutPiece(ctx context.Context, key string, offset int64, data []byte) error {
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	if offset < 0 {
		return fmt.Errorf("blob: piece of %s at %d", key, offset)
	}
	ctx, cancel := context.WithTimeout(ctx, s3SmallTimeout)
	defer cancel()
	name := pieceName(key, offset)
	_, err := s.c.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return s.fail("put", name, err)
	}
	return nil
}

// piece is one stored piece.
type piece struct {
	name   string
	offset int64
	size   int64
}

// pieces lists key's pieces by offset.
func (s *S3) pieces(ctx context.Context, key string) ([]piece, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	ctx, cancel := context.WithTimeout(ctx, s3SmallTimeout)
	defer cancel()
	prefix := piecesPrefix(key)
	var out []piece
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, s.fail("list", prefix, o.Err)
		}
		off, err := strconv.ParseInt(strings.TrimPrefix(o.Key, prefix), 10, 64)
		if err != nil || off < 0 {
			s.log.Warn("blob: not a piece", "object", o.Key)
			continue
		}
		out = append(out, piece{name: o.Key, offset: off, size: o.Size})
	}
	slices.SortFunc(out, func(a, b piece) int { return cmp.Compare(a.offset, b.offset) })
	return out, nil
}

// ReadPieces writes the bytes of key's pieces to w in order, from offset 0 up to the first
// gap (a piece that is missing: what follows it cannot be placed), and returns how many it
// wrote: 0 when key has no pieces. Pieces that overlap (an upload repeated from an earlier
// offset) are written once.
func (s *S3) ReadPieces(ctx context.Context, key string, w io.Writer) (int64, error) {
	ps, err := s.pieces(ctx, key)
	if err != nil {
		return 0, err
	}
	var end int64
	for _, p := range ps {
		if p.offset > end {
			s.log.Warn("blob: pieces end at a gap", "key", key, "at", end, "next", p.offset, "left", len(ps))
			break
		}
		if p.offset+p.size <= end {
			continue
		}
		n, err := s.copyPiece(ctx, p, end-p.offset, w)
		end += n
		if err != nil {
			return end, err
		}
	}
	return end, nil
}

// copyPiece writes piece p from its byte skip on to w.
func (s *S3) copyPiece(ctx context.Context, p piece, skip int64, w io.Writer) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s3SmallTimeout)
	defer cancel()
	opts := minio.GetObjectOptions{}
	if skip > 0 {
		if err := opts.SetRange(skip, 0); err != nil {
			return 0, err
		}
	}
	o, err := s.c.GetObject(ctx, s.bucket, p.name, opts)
	if err != nil {
		return 0, s.fail("get", p.name, err)
	}
	defer o.Close()
	n, err := io.Copy(w, o)
	if err == nil && n != p.size-skip {
		err = fmt.Errorf("%d bytes, listed %d", n, p.size-skip)
	}
	if err != nil {
		return n, s.fail("get", p.name, err)
	}
	return n, nil
}

// DeletePieces deletes every piece of key.
func (s *S3) DeletePieces(ctx context.Context, key string) error {
	ps, err := s.pieces(ctx, key)
	if err != nil || len(ps) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s3SmallTimeout)
	defer cancel()
	objs := make(chan minio.ObjectInfo, len(ps))
	for _, p := range ps {
		objs <- minio.ObjectInfo{Key: p.name}
	}
	close(objs)
	var first error
	n := 0
	for e := range s.c.RemoveObjects(ctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		n++
		if first == nil {
			first = s.fail("delete", e.ObjectName, e.Err)
		}
	}
	if first != nil {
		return fmt.Errorf("%d of %d pieces of %s not deleted: %w", n, len(ps), key, first)
	}
	return nil
}
