package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ivrd/ivrd/internal/store"
)

// nodeIDFile holds, in the data directory, the id under which this ivrd claims notifications
// and owns sessions in the store. It is kept across restarts, so a restarted node finds its
// own sessions and claims again.
const nodeIDFile = "node-id"

// loadOrCreateNodeID returns the node id kept in the data directory, creating it on first start.
func loadOrCreateNodeID(data string) (string, error) {
	path := filepath.Join(data, nodeIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" || strings.ContainsAny(id, " \t\n") {
			return "", fmt.Errorf("node id: %s holds %q", path, b)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("node id: %w", err)
	}
	id := store.NewNodeID()
	tmp, err := os.CreateTemp(data, ".node-id-*")
	if err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(id + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path) // whole, or not at all
	}
	if errors.Is(err, fs.ErrExist) { // created meanwhile: use that one
		return loadOrCreateNodeID(data)
	}
	if err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return id, nil
}
