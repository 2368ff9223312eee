// Package blob stores recordings on local disk and serves them through signed, expiring URLs.
package blob

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotFound is returned by Open for a key that is not stored.
var ErrNotFound = errors.New("blob: not found")

// ErrBadKey is returned for a key that is not a plain file name (see ValidKey).
var ErrBadKey = errors.New("blob: invalid key")

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

// Local keeps blobs as files Dir/<key>.
type Local struct{ Dir string }

func (l *Local) path(key string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	return filepath.Join(l.Dir, key), nil
}

// PutFile moves the file src into the store under key, replacing any blob with that key. It
// renames when src is on the same file system and otherwise copies (to a temporary file that
// is synced and renamed into place) and removes src. The store's directory is created if needed.
func (l *Local) PutFile(key, src string) error {
	dst, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	if st, err := os.Stat(src); err != nil {
		return fmt.Errorf("blob: %w", err)
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("blob: %s is not a regular file", src)
	}
	err = os.Rename(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		err = copyReplace(src, dst)
	}
	if err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	syncDir(l.Dir)
	return nil
}

// copyReplace is the cross-file-system move: copy src beside dst, sync, rename over dst, then
// remove src. A crash leaves either the old dst or the new one, never a partial file.
func copyReplace(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".put-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	in.Close()
	return os.Remove(src)
}

// syncDir makes a rename in dir durable; failure only weakens durability, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Open opens a stored blob for reading. A key that is not stored (or not valid) gives an
// error wrapping ErrNotFound.
func (l *Local) Open(key string) (*os.File, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	return f, nil
}

// Delete removes a stored blob. A key that is not stored is not an error: deleting is
// repeated safely (a crash between removing a recording's file and its row, say).
func (l *Local) Delete(key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	syncDir(l.Dir)
	return nil
}
