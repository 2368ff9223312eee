package notify

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ivrd/ivrd/internal/store"
)

// maxSpooled bounds the notifications held in memory while the store cannot take them
// (about 1 KiB each).
const maxSpooled = 100_000

// errSpoolFull is returned by Notify when maxSpooled notifications already wait for the store.
var errSpoolFull = errors.New("store unavailable and too many notifications waiting for it")

// spool holds, in the order they were queued, notifications the store could not take (disk
// full, database locked). Once one is held, every later one queues behind it, so the store's
// order (the delivery order of a session) is always the order of the Notify calls.
type spool struct {
	mu    sync.Mutex // held while storing, so nothing overtakes what is being stored
	items []store.OutboxItem
	held  atomic.Int64 // len(items), readable without waiting for a store write
}

// enqueue stores it, or holds it in the spool when the store cannot take it now.
func (q *Queue) enqueue(it store.OutboxItem) error {
	q.spool.mu.Lock()
	defer q.spool.mu.Unlock()
	if len(q.spool.items) == 0 {
		_, err := q.st.EnqueueOutbox(it)
		if err == nil || !store.Transient(err) {
			return err
		}
		q.storeFailed(err)
		q.o.Log.Warn("notify: cannot store notifications; keeping them in memory until the store takes them",
			"delivery_id", it.DeliveryID, "err", err)
	}
	if len(q.spool.items) >= maxSpooled {
		q.o.Log.Error("notify: notification dropped", "delivery_id", it.DeliveryID, "app", it.AppID,
			"url", redact(it.Target), "err", errSpoolFull)
		return fmt.Errorf("%w (%d)", errSpoolFull, maxSpooled)
	}
	q.spool.items = append(q.spool.items, it)
	q.spool.held.Store(int64(len(q.spool.items)))
	return nil
}

// flushSpool stores held notifications in order until the store fails again, and returns
// how many are still held.
func (q *Queue) flushSpool() int {
	q.spool.mu.Lock()
	defer q.spool.mu.Unlock()
	stored := 0
	for len(q.spool.items) > 0 {
		it := q.spool.items[0]
		_, err := q.st.EnqueueOutbox(it)
		if err != nil && store.Transient(err) {
			q.storeFailed(err)
			break
		}
		if err != nil {
			q.o.Log.Error("notify: notification refused by the store, dropped", "delivery_id", it.DeliveryID, "err", err)
		} else {
			stored++
		}
		q.spool.items[0] = store.OutboxItem{}
		q.spool.items = q.spool.items[1:]
	}
	if len(q.spool.items) == 0 {
		q.spool.items = nil
	}
	q.spool.held.Store(int64(len(q.spool.items)))
	if stored > 0 {
		q.o.Log.Info("notify: notifications held in memory are stored", "count", stored, "still_held", len(q.spool.items))
	}
	return len(q.spool.items)
}

// Held returns how many notifications wait in memory for the store.
func (q *Queue) Held() int { return int(q.spool.held.Load()) }

// storeFailed passes a failed store write to Options.OnStoreError.
func (q *Queue) storeFailed(err error) {
	if q.o.OnStoreError != nil {
		q.o.OnStoreError(err)
	}
}
