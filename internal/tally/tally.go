// Package tally counts repeated events by key and logs them as one line per key per period,
// so that a flood (refused requests, shed connections) is visible in the logs without a
// line per event.
package tally

import (
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Tally counts events by key. Its methods are safe for concurrent use.
type Tally struct {
	log    *slog.Logger
	msg    string
	key    string
	period time.Duration

	mu     sync.Mutex
	counts map[string]int
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

// New starts a tally that every period logs, at warn level, msg with keyName=<key> and
// count=<events in the period> for each key that had events. Close stops it.
func New(log *slog.Logger, period time.Duration, msg, keyName string) *Tally {
	t := &Tally{log: log, msg: msg, key: keyName, period: period, counts: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go t.run()
	return t
}

// Add counts one event for key.
func (t *Tally) Add(key string) {
	t.mu.Lock()
	t.counts[key]++
	t.mu.Unlock()
}

// Close logs what is counted and stops. Later calls do nothing.
func (t *Tally) Close() {
	t.closed.Do(func() { close(t.stop) })
	<-t.done
}

func (t *Tally) run() {
	defer close(t.done)
	tick := time.NewTicker(t.period)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			t.flush()
			return
		case <-tick.C:
			t.flush()
		}
	}
}

func (t *Tally) flush() {
	t.mu.Lock()
	counts := t.counts
	t.counts = map[string]int{}
	t.mu.Unlock()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.log.Warn(t.msg, t.key, k, "count", counts[k], "period", t.period)
	}
}
