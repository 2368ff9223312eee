package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Local keeps blobs as files Dir/<key>.
type Local struct{ Dir string }

var _ Store = (*Local)(nil)

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
func (l *Local) Open(_ context.Context, key string) (*Object, error) {
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
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	return &Object{ReadSeekCloser: f, Size: st.Size(), ModTime: st.ModTime()}, nil
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
