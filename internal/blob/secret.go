package blob

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SecretSize is the length of the URL signing secret.
const SecretSize = 32

// LoadOrCreateSecret returns the URL signing secret kept in the file at path, creating it with
// SecretSize random bytes and mode 0600 on first use. Creation is atomic (a temporary file
// is linked into place), so two processes starting together agree on one secret. A file of
// the wrong size is an error, not silently replaced: that would invalidate every URL handed out.
func LoadOrCreateSecret(path string) ([]byte, error) {
	b, err := readSecret(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	secret := make([]byte, SecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("blob: secret: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob: secret: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".secret-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("blob: secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(secret)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("blob: secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // someone else created it first: use theirs
			return readSecret(path)
		}
		return nil, fmt.Errorf("blob: secret: %w", err)
	}
	syncDir(dir)
	return secret, nil
}

func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("blob: secret: %w", err)
	}
	if len(b) != SecretSize {
		return nil, fmt.Errorf("blob: secret %s: %d bytes, want %d", path, len(b), SecretSize)
	}
	return b, nil
}
