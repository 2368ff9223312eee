package server

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The node id is made once per data directory and kept: every start (and every process racing
// to make it) gets the same one.
func TestNodeID(t *testing.T) {
	data := t.TempDir()
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := loadOrCreateNodeID(data)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || !strings.HasPrefix(id, "N") || len(id) != 17 {
			t.Fatalf("ids %v", ids)
		}
	}
	if again, err := loadOrCreateNodeID(data); err != nil || again != ids[0] {
		t.Fatalf("second start: %q, %v; want %q", again, err, ids[0])
	}
	if other, _ := loadOrCreateNodeID(t.TempDir()); other == ids[0] {
		t.Fatal("two data directories share a node id")
	}
	if err := os.WriteFile(filepath.Join(data, nodeIDFile), []byte("two words\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if id, err := loadOrCreateNodeID(data); err == nil {
		t.Fatalf("a bad node-id file gave %q", id)
	}
	left, _ := filepath.Glob(filepath.Join(data, ".node-id-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
