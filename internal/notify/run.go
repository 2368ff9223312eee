package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
	"github.com/ivrd/ivrd/internal/store"
)

// Run delivers queued notifications until ctx is done, then returns nil once in-flight
// attempts have been abandoned. An abandoned attempt is not counted: the item stays due (and
// its claim is given back). On start, every undelivered item is due again at once (no old
// backoff is waited out) and this node's claims from before are given back. Only one Run may
// be active per Queue. Notifications held in memory (the store could not take them) are stored
// by Run as soon as the store can; those still held when Run returns are lost, and logged.
func (q *Queue) Run(ctx context.Context) error {
	if !q.running.CompareAndSwap(false, true) {
		return errors.New("notify: Run is already running")
	}
	defer q.running.Store(false)
	n, err := q.st.RequeueOutbox(time.Now(), q.o.Node)
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

	d := newDispatcher(q, work)
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

// pollInterval bounds how long Run sleeps without looking at the outbox (for items other
// nodes queued).
const pollInterval = 30 * time.Second

// dispatcher is Run's state; only Run's goroutine touches it. Items being attempted are
// claimed in the store; a failed attempt whose outcome could not be recorded stays claimed
// until its lease runs out, and is then attempted again.
type dispatcher struct {
	q    *Queue
	work chan<- store.OutboxItem
	// busy counts the attempts handed to workers whose results Run has not taken yet. (An
	// item can be claimed again before its previous attempt's result is taken: the attempt
	// ended its claim when it recorded its outcome.)
	busy int
	// inflight holds, for each item handed to a worker whose result Run has not taken, the
	// attempts it had when claimed. An item claimed again with as many attempts still is the
	// same attempt, its lease run out while the worker waited for the store: it is parked
	// until that attempt's result says whether it went out.
	inflight map[int64]int
	parked   map[int64]store.OutboxItem
	// unmarked are delivered items the store has not recorded as such yet (attempts made):
	// they are not posted again, only recorded, every MinBackoff.
	unmarked  map[int64]int
	lastMark  time.Time
	lastFlush time.Time
}

type result struct {
	id        int64
	claimed   int // the item's attempts when it was claimed
	attempts  int
	delivered bool // the app answered 2xx
	markErr   error
}

func newDispatcher(q *Queue, work chan<- store.OutboxItem) *dispatcher {
	return &dispatcher{q: q, work: work, inflight: map[int64]int{}, parked: map[int64]store.OutboxItem{},
		unmarked: map[int64]int{}}
}

// hand gives a claimed item to a worker; there is room: at most Workers are busy.
func (d *dispatcher) hand(it store.OutboxItem) {
	d.busy++
	d.inflight[it.ID] = it.Attempts
	d.work <- it // buffered for Workers items: never blocks
}

func (d *dispatcher) finish(r result) {
	d.busy--
	if a, ok := d.inflight[r.id]; ok && a == r.claimed {
		delete(d.inflight, r.id)
	}
	if r.markErr != nil && r.delivered {
		d.unmarked[r.id] = r.attempts
	}
	if it, ok := d.parked[r.id]; ok {
		delete(d.parked, r.id)
		// Posted: recorded now or by retryStore. Failed with its outcome recorded: the
		// store says when it is due again. Failed with no record: it is attempted again.
		if !r.delivered && r.markErr != nil {
			d.hand(it)
		}
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
			err := d.q.st.MarkDelivered(id, d.q.o.Node, attempts)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				d.q.storeFailed(err)
				break
			}
			delete(d.unmarked, id)
		}
	}
}

// dispatch claims due items for free workers and returns how long to sleep before looking
// again (worker results and Notify wake Run earlier).
func (d *dispatcher) dispatch(now time.Time) time.Duration {
	d.retryStore(now)
	if free := d.q.o.Workers - d.busy; free > 0 {
		items, err := d.q.st.ClaimOutbox(d.q.o.Node, now, d.q.o.Lease, free)
		if err != nil {
			d.q.o.Log.Error("notify: claim outbox items", "err", err)
			return d.q.o.MinBackoff
		}
		for _, it := range items {
			// Delivered already (its claim ran out before the store could record it): it is
			// claimed again, for retryStore to record, not to be posted twice.
			if _, ok := d.unmarked[it.ID]; ok {
				continue
			}
			if a, ok := d.inflight[it.ID]; ok && a == it.Attempts {
				d.parked[it.ID] = it
				continue
			}
			d.hand(it)
		}
	}
	wait := pollInterval
	if next, ok, err := d.q.st.NextOutboxAt(now); err == nil && ok {
		wait = min(wait, next.Sub(now))
	}
	if d.q.Held() > 0 {
		wait = min(wait, d.lastFlush.Add(d.q.o.MinBackoff).Sub(now))
	}
	if len(d.unmarked) > 0 {
		wait = min(wait, d.lastMark.Add(d.q.o.MinBackoff).Sub(now))
	}
	return max(wait, time.Millisecond)
}

// deliver makes one attempt at a claimed item and records its outcome. The attempt is cut
// off at half the lease, so it is over before another node may claim the item.
func (q *Queue) deliver(ctx context.Context, it store.OutboxItem) result {
	attempt := it.Attempts + 1
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, q.o.Lease/2)
	code, err := q.post(actx, it, attempt)
	cancel()
	if err != nil && ctx.Err() != nil { // shutting down: the attempt does not count
		if err := q.st.ReleaseOutbox(it.ID, q.o.Node); err != nil {
			q.o.Log.Warn("notify: give back an abandoned attempt (it waits out its lease)", "delivery_id", it.DeliveryID, "err", err)
		}
		return result{id: it.ID, claimed: it.Attempts, attempts: it.Attempts}
	}
	log := q.o.Log.With("delivery_id", it.DeliveryID, "app", it.AppID, "url", redact(it.Target), "attempt", attempt)
	if it.SessionKey != "" {
		log = log.With(calllog.Key, it.SessionKey)
	}
	q.o.Metrics.Attempt(err == nil)
	now := time.Now()
	q.recordAttempt(log, store.OutboxAttempt{OutboxID: it.ID, Attempt: attempt, At: start, Duration: now.Sub(start),
		StatusCode: code, Error: errText(err)})
	var markErr error
	switch {
	case err == nil:
		markErr = q.st.MarkDelivered(it.ID, q.o.Node, attempt)
		q.o.Metrics.Delivered(now.Sub(it.CreatedAt))
		log.Debug("notify: delivered", "latency", now.Sub(it.CreatedAt))
	case now.Sub(it.CreatedAt) >= q.o.MaxAge:
		markErr = q.st.MarkFailed(it.ID, q.o.Node, attempt, err.Error())
		q.o.Metrics.GaveUp()
		log.Error("notify: giving up", "age", now.Sub(it.CreatedAt).Round(time.Second), "err", err)
	default:
		next := now.Add(q.backoff(attempt))
		if deadline := it.CreatedAt.Add(q.o.MaxAge); next.After(deadline) {
			next = deadline // one last attempt when the time is up
		}
		markErr = q.st.MarkRetry(it.ID, q.o.Node, attempt, next, err.Error())
		log.Warn("notify: attempt failed, will retry", "in", next.Sub(now).Round(time.Millisecond), "err", err)
	}
	if markErr != nil {
		q.storeFailed(markErr)
		log.Error("notify: record delivery outcome", "err", markErr)
	}
	return result{id: it.ID, claimed: it.Attempts, attempts: attempt, delivered: err == nil, markErr: markErr}
}

// backoff is the wait after a failed attempt number n (1-based): MinBackoff·2^(n-1), capped.
func (q *Queue) backoff(n int) time.Duration {
	d := q.o.MinBackoff
	for i := 1; i < n && d < q.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, q.o.MaxBackoff)
}

// recordAttempt keeps an attempt's outcome for the console. The history is for people to
// read: when it cannot be written the delivery goes on as if it had been (logged).
func (q *Queue) recordAttempt(log *slog.Logger, a store.OutboxAttempt) {
	if err := q.st.AddOutboxAttempt(a); err != nil {
		q.storeFailed(err)
		log.Warn("notify: record attempt", "err", err)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// post sends one attempt and returns the HTTP status the app answered (0: no answer); a nil
// error means the status was 2xx.
func (q *Queue) post(ctx context.Context, it store.OutboxItem, attempt int) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, it.Target, bytes.NewReader(it.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "ivrd")
	req.Header.Set(HeaderSignature, it.Signature)
	req.Header.Set(HeaderDeliveryID, it.DeliveryID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	resp, err := q.o.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
