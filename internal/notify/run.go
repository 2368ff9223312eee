package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
	"github.com/ivrd/ivrd/internal/store"
)

// Run delivers queued notifications until ctx is done, then returns nil once in-flight
// attempts have been abandoned. An abandoned attempt is not counted: the item stays due.
// On start, every undelivered item is due again at once (no old backoff is waited out).
// Only one Run may be active per Queue. Notifications held in memory (the store could not
// take them) are stored by Run as soon as the store can; those still held when Run returns are
// lost, and logged.
func (q *Queue) Run(ctx context.Context) error {
	if !q.running.CompareAndSwap(false, true) {
		return errors.New("notify: Run is already running")
	}
	defer q.running.Store(false)
	n, err := q.st.RequeueOutbox(time.Now())
	if err != nil { // the items are still there, due after their backoff
		q.storeFailed(err)
		q.o.Log.Error("notify: requeue undelivered notifications", "err", err)
	}
	if n > 0 {
		q.o.Log.Info("notify: undelivered notifications queued", "count", n)
	}
	defer func() {
		if q.Held() > 0 && q.flushSpool() > 0 {
			q.o.Log.Error("notify: notifications lost: the store could not take them before shutdown", "count", q.Held())
		}
	}()

	work := make(chan store.OutboxItem, q.o.Workers)
	done := make(chan result, q.o.Workers) // at most Workers items are in flight: sends never block
	var wg sync.WaitGroup
	for range q.o.Workers {
		wg.Go(func() {
			for it := range work {
				done <- q.deliver(ctx, it)
			}
		})
	}
	defer func() { close(work); wg.Wait() }()

	d := dispatcher{q: q, work: work, inflight: map[int64]bool{}, hold: map[int64]time.Time{}, unmarked: map[int64]int{}}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var lastPurge time.Time
	for {
		now := time.Now()
		if now.Sub(lastPurge) >= time.Hour {
			lastPurge = now
			if n, err := q.st.PurgeOutbox(now.Add(-q.o.Retain)); err != nil {
				q.o.Log.Error("notify: purge outbox", "err", err)
			} else if n > 0 {
				q.o.Log.Debug("notify: purged finished notifications", "count", n)
			}
		}
		timer.Reset(d.dispatch(now))
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		case <-timer.C:
		case r := <-done:
			d.finish(r)
			for more := true; more; { // take every result already there before querying again
				select {
				case r := <-done:
					d.finish(r)
				default:
					more = false
				}
			}
		}
	}
}

// pollInterval bounds how long Run sleeps without looking at the outbox.
const pollInterval = 30 * time.Second

// dispatcher is Run's state; only Run's goroutine touches it.
type dispatcher struct {
	q        *Queue
	work     chan<- store.OutboxItem
	inflight map[int64]bool
	hold     map[int64]time.Time // failed attempts whose outcome could not be recorded: not before then
	// unmarked are delivered items the store has not recorded as such yet (attempts made):
	// they are not posted again, only recorded, every MinBackoff.
	unmarked  map[int64]int
	lastMark  time.Time
	lastFlush time.Time
}

type result struct {
	id        int64
	attempts  int
	delivered bool // the app answered 2xx
	markErr   error
}

func (d *dispatcher) finish(r result) {
	delete(d.inflight, r.id)
	switch {
	case r.markErr == nil:
	case r.delivered:
		d.unmarked[r.id] = r.attempts
	default:
		d.hold[r.id] = time.Now().Add(d.q.o.MinBackoff)
	}
}

// retryStore does, at most every MinBackoff, the store writes that failed before: storing
// notifications held in memory, and recording deliveries.
func (d *dispatcher) retryStore(now time.Time) {
	if d.q.Held() > 0 && now.Sub(d.lastFlush) >= d.q.o.MinBackoff {
		d.lastFlush = now
		d.q.flushSpool()
	}
	if len(d.unmarked) > 0 && now.Sub(d.lastMark) >= d.q.o.MinBackoff {
		d.lastMark = now
		for id, attempts := range d.unmarked {
			err := d.q.st.MarkDelivered(id, attempts)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				d.q.storeFailed(err)
				break
			}
			delete(d.unmarked, id)
		}
	}
}

// dispatch hands due items to free workers and returns how long to sleep before looking again
// (worker results and Notify wake Run earlier).
func (d *dispatcher) dispatch(now time.Time) time.Duration {
	d.retryStore(now)
	free := d.q.o.Workers - len(d.inflight)
	if free > 0 {
		// In-flight, held and unmarked items are still pending and due, so ask for enough
		// to see past them.
		items, err := d.q.st.DueOutbox(now, len(d.inflight)+len(d.hold)+len(d.unmarked)+free)
		if err != nil {
			d.q.o.Log.Error("notify: read outbox", "err", err)
			return d.q.o.MinBackoff
		}
		for _, it := range items {
			if free == 0 {
				break
			}
			if _, ok := d.unmarked[it.ID]; ok || d.inflight[it.ID] {
				continue
			}
			if until, ok := d.hold[it.ID]; ok {
				if now.Before(until) {
					continue
				}
				delete(d.hold, it.ID)
			}
			d.inflight[it.ID] = true
			d.work <- it // buffered for Workers items: never blocks
			free--
		}
	}
	wait := pollInterval
	if next, ok, err := d.q.st.NextOutboxAt(now); err == nil && ok {
		wait = min(wait, next.Sub(now))
	}
	for id, until := range d.hold {
		if !d.inflight[id] {
			wait = min(wait, until.Sub(now))
		}
	}
	if d.q.Held() > 0 {
		wait = min(wait, d.lastFlush.Add(d.q.o.MinBackoff).Sub(now))
	}
	if len(d.unmarked) > 0 {
		wait = min(wait, d.lastMark.Add(d.q.o.MinBackoff).Sub(now))
	}
	return max(wait, time.Millisecond)
}

// deliver makes one attempt and records its outcome.
func (q *Queue) deliver(ctx context.Context, it store.OutboxItem) result {
	attempt := it.Attempts + 1
	err := q.post(ctx, it, attempt)
	if err != nil && ctx.Err() != nil {
		return result{id: it.ID, attempts: it.Attempts} // shutting down: the attempt does not count
	}
	log := q.o.Log.With("delivery_id", it.DeliveryID, "app", it.AppID, "url", redact(it.Target), "attempt", attempt)
	if it.SessionKey != "" {
		log = log.With(calllog.Key, it.SessionKey)
	}
	q.o.Metrics.Attempt(err == nil)
	var markErr error
	now := time.Now()
	switch {
	case err == nil:
		markErr = q.st.MarkDelivered(it.ID, attempt)
		q.o.Metrics.Delivered(now.Sub(it.CreatedAt))
		log.Debug("notify: delivered", "latency", now.Sub(it.CreatedAt))
	case now.Sub(it.CreatedAt) >= q.o.MaxAge:
		markErr = q.st.MarkFailed(it.ID, attempt, err.Error())
		q.o.Metrics.GaveUp()
		log.Error("notify: giving up", "age", now.Sub(it.CreatedAt).Round(time.Second), "err", err)
	default:
		next := now.Add(q.backoff(attempt))
		if deadline := it.CreatedAt.Add(q.o.MaxAge); next.After(deadline) {
			next = deadline // one last attempt when the time is up
		}
		markErr = q.st.MarkRetry(it.ID, attempt, next, err.Error())
		log.Warn("notify: attempt failed, will retry", "in", next.Sub(now).Round(time.Millisecond), "err", err)
	}
	if markErr != nil {
		q.storeFailed(markErr)
		log.Error("notify: record delivery outcome", "err", markErr)
	}
	return result{id: it.ID, attempts: attempt, delivered: err == nil, markErr: markErr}
}

// backoff is the wait after a failed attempt number n (1-based): MinBackoff·2^(n-1), capped.
func (q *Queue) backoff(n int) time.Duration {
	d := q.o.MinBackoff
	for i := 1; i < n && d < q.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, q.o.MaxBackoff)
}

// post sends one attempt; nil means the app answered 2xx.
func (q *Queue) post(ctx context.Context, it store.OutboxItem, attempt int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, it.Target, bytes.NewReader(it.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "ivrd")
	req.Header.Set(HeaderSignature, it.Signature)
	req.Header.Set(HeaderDeliveryID, it.DeliveryID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	resp, err := q.o.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
