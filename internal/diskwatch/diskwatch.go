// Package diskwatch watches whether the data directory can be written: every few seconds it
// looks at the free space and writes a small probe file. A write failure elsewhere (the
// database, a recording) can ask for a probe at once. New calls are refused and /readyz
// reports the problem while it lasts.
package diskwatch

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Defaults.
const (
	DefaultInterval = 2 * time.Second
	DefaultMinFree  = 1 << 20 // bytes
	probeName       = ".ivrd-write-probe"
	probeSize       = 4096
)

// Config configures a Watcher.
type Config struct {
	Dir      string        // the directory to watch (must exist)
	Interval time.Duration // between probes; default DefaultInterval
	MinFree  int64         // fewer free bytes than this is a problem; default DefaultMinFree
	Log      *slog.Logger  // required
}

// Watcher probes a directory. Its methods are safe for concurrent use.
type Watcher struct {
	cfg  Config
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	problem string
	since   time.Time
}

// New probes dir once and keeps probing it in the background until Close.
func New(cfg Config) (*Watcher, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MinFree <= 0 {
		cfg.MinFree = DefaultMinFree
	}
	if st, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("diskwatch: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("diskwatch: %s is not a directory", cfg.Dir)
	}
	w := &Watcher{cfg: cfg, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.Probe()
	go w.run()
	return w, nil
}

// Problem returns why the directory cannot be written now ("" when it can), as of the last
// probe.
func (w *Watcher) Problem() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.problem
}

// Check asks for a probe soon (a write failed somewhere); it does not wait for it.
func (w *Watcher) Check(error) {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Probe looks at the directory now and returns the problem ("" when it can be written).
func (w *Watcher) Probe() string {
	p := probe(w.cfg.Dir, w.cfg.MinFree)
	w.mu.Lock()
	prev, since := w.problem, w.since
	w.problem = p
	if p != prev {
		w.since = time.Now()
	}
	w.mu.Unlock()
	switch {
	case p != "" && prev == "":
		w.cfg.Log.Error("data directory cannot be written: refusing new calls", "dir", w.cfg.Dir, "problem", p)
	case p == "" && prev != "":
		w.cfg.Log.Info("data directory writable again: taking calls", "dir", w.cfg.Dir, "after", time.Since(since).Round(time.Second))
	}
	return p
}

// Close stops the background probes.
func (w *Watcher) Close() {
	close(w.stop)
	<-w.done
}

func (w *Watcher) run() {
	defer close(w.done)
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.wake:
		}
		w.Probe()
	}
}

// probe returns what keeps dir from being written, or "".
func probe(dir string, minFree int64) string {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return "data directory: " + err.Error()
	}
	if free := int64(fs.Bavail) * int64(fs.Bsize); free < minFree {
		return fmt.Sprintf("data directory full: %d bytes free (need %d)", free, minFree)
	}
	path := filepath.Join(dir, probeName)
	err := writeProbe(path)
	os.Remove(path)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return "data directory full: " + err.Error()
		}
		return "data directory cannot be written: " + err.Error()
	}
	return ""
}

func writeProbe(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, probeSize))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
