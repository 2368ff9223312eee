// Package blob keeps recordings, on local disk (Local) or in an S3-compatible object store
// (S3), and serves them through signed, expiring URLs (Signer, Handler) or the store's own
// presigned ones (Presigner).
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Store keeps blobs by key.
type Store interface {
	// PutFile moves the file src into the store under key, replacing any blob with that key;
	// src is removed once the blob is stored, and left in place when storing fails.
	PutFile(key, src string) error
	// Open opens a stored blob; an error wrapping ErrNotFound when it is not stored. ctx
	// bounds the reads too (a remote store streams the blob).
	Open(ctx context.Context, key string) (*Object, error)
	// Delete removes a stored blob; nil when it is not stored.
	Delete(key string) error
}

// Object is a stored blob opened for reading. Close it.
type Object struct {
	io.ReadSeekCloser
	Size    int64
	ModTime time.Time
}

// ErrNotFound is returned by Open for a key that is not stored.
var ErrNotFound = errors.New("blob: not found")

// ErrBadKey is returned for a key that is not a plain file name (see ValidKey).
var ErrBadKey = errors.New("blob: invalid key")

// ErrUnavailable wraps the failures of a remote store (unreachable, refusing, timing out).
var ErrUnavailable = errors.New("blob: store unavailable")

// maxKeyLen bounds keys (well below any file system's name limit).
const maxKeyLen = 200

// ValidKey reports whether key can name a blob: 1–200 characters from [A-Za-z0-9._-], not
// starting with '.', and so never containing '/' or naming "." or "..".
func ValidKey(key string) bool {
	if key == "" || len(key) > maxKeyLen || key[0] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Opener opens stored blobs (a Store, or anything with its Open).
type Opener interface {
	Open(ctx context.Context, key string) (*Object, error)
}

// ReadAll reads the blob key whole. It checks the length read against the object's Size.
func ReadAll(ctx context.Context, st Opener, key string) ([]byte, error) {
	o, err := st.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err == nil && int64(len(b)) != o.Size {
		err = fmt.Errorf("blob: %s: read %d bytes of %d", key, len(b), o.Size)
	}
	return b, err
}
