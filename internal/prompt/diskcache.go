package prompt

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// diskCache keeps decoded 8 kHz PCM on disk, one file per key under dir/<kind>/, plus an
// optional JSON sidecar (URL metadata). Files are written atomically (temp + rename). The
// total size is bounded: when it passes max, the least recently used files (by mtime, which
// a hit refreshes) are removed until it is under 90 % of max. A nil *diskCache does nothing.
type diskCache struct {
	dir string
	max int64
	log *slog.Logger

	mu   sync.Mutex
	size int64 // bytes of .pcm files, approximate between trims
}

const pcmMagic = "IVRDPCM1" // file = magic, uint32 sample count, s16le samples

func newDiskCache(dir string, max int64, log *slog.Logger) (*diskCache, error) {
	for _, kind := range []string{"tts", "url"} {
		if err := os.MkdirAll(filepath.Join(dir, kind), 0o750); err != nil {
			return nil, fmt.Errorf("prompt cache: %w", err)
		}
	}
	d := &diskCache{dir: dir, max: max, log: log}
	d.mu.Lock()
	d.trimLocked()
	d.mu.Unlock()
	return d, nil
}

func (d *diskCache) path(kind, key, ext string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(d.dir, kind, hex.EncodeToString(h[:16])+ext)
}

// get reads the PCM stored under (kind, key).
func (d *diskCache) get(kind, key string) ([]int16, bool) {
	if d == nil {
		return nil, false
	}
	name := d.path(kind, key, ".pcm")
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, false
	}
	if len(b) < len(pcmMagic)+4 || string(b[:len(pcmMagic)]) != pcmMagic {
		_ = os.Remove(name)
		return nil, false
	}
	n := int(binary.LittleEndian.Uint32(b[len(pcmMagic):]))
	body := b[len(pcmMagic)+4:]
	if len(body) != 2*n {
		_ = os.Remove(name)
		return nil, false
	}
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
	}
	now := time.Now()
	_ = os.Chtimes(name, now, now) // LRU by mtime
	return pcm, true
}

// put stores pcm under (kind, key); failures are logged, never fatal.
func (d *diskCache) put(kind, key string, pcm []int16) {
	if d == nil {
		return
	}
	b := make([]byte, len(pcmMagic)+4+2*len(pcm))
	copy(b, pcmMagic)
	binary.LittleEndian.PutUint32(b[len(pcmMagic):], uint32(len(pcm)))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(b[len(pcmMagic)+4+2*i:], uint16(s))
	}
	if err := writeAtomic(d.path(kind, key, ".pcm"), b); err != nil {
		d.log.Warn("prompt cache write failed", "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.size += int64(len(b))
	if d.size > d.max {
		d.trimLocked()
	}
}

// getMeta decodes the JSON sidecar of (kind, key) into v.
func (d *diskCache) getMeta(kind, key string, v any) bool {
	if d == nil {
		return false
	}
	b, err := os.ReadFile(d.path(kind, key, ".json"))
	return err == nil && json.Unmarshal(b, v) == nil
}

func (d *diskCache) putMeta(kind, key string, v any) {
	if d == nil {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = writeAtomic(d.path(kind, key, ".json"), b)
	}
	if err != nil {
		d.log.Warn("prompt cache meta write failed", "err", err)
	}
}

// remove deletes the entry (kind, key) and its sidecar.
func (d *diskCache) remove(kind, key string) {
	if d == nil {
		return
	}
	_ = os.Remove(d.path(kind, key, ".json"))
	_ = os.Remove(d.path(kind, key, ".pcm"))
}

func writeAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// trimLocked recounts the cache and removes the oldest files until it fits in 90 % of max.
// Leftover temp files older than a minute and sidecars without PCM are removed too.
func (d *diskCache) trimLocked() {
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var files []file
	var total int64
	_ = filepath.WalkDir(d.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".tmp-"):
			if time.Since(info.ModTime()) > time.Minute {
				_ = os.Remove(path)
			}
		case strings.HasSuffix(name, ".pcm"):
			files = append(files, file{path, info.Size(), info.ModTime()})
			total += info.Size()
		case strings.HasSuffix(name, ".json"):
			if _, err := os.Stat(strings.TrimSuffix(path, ".json") + ".pcm"); err != nil {
				_ = os.Remove(path)
			}
		}
		return nil
	})
	if total > d.max {
		sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
		for _, f := range files {
			if total <= d.max*9/10 {
				break
			}
			_ = os.Remove(strings.TrimSuffix(f.path, ".pcm") + ".json")
			if os.Remove(f.path) == nil {
				total -= f.size
			}
		}
		d.log.Info("prompt cache trimmed", "dir", d.dir, "bytes", total)
	}
	d.size = total
}
