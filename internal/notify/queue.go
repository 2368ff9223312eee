// Package notify delivers notifications to apps through a durable outbox: Notify stores the
// signed notification in the database before it returns, and Run POSTs it, retrying with
// exponential backoff until the app answers 2xx or the notification is too old.
//
// Guarantees: at-least-once delivery (apps drop duplicates by X-Ivrd-Delivery-Id); an item is
// never being delivered twice at the same time; items of one session (NotifySession) are
// attempted strictly in order: none is tried while an earlier one is undelivered, until that
// one is given up (MaxAge after it was queued). When the store cannot take a notification
// (disk full, database locked), Notify keeps it in memory, in order, and Run stores it as
// soon as the store can.
//
// Any number of queues, in any number of processes (nodes), may run on one shared store
// (PostgreSQL): each attempt is made by the node that claimed the item in the store for the
// attempt (store.ClaimOutbox), so the guarantees hold across nodes; a node that dies holding
// claims delays those items by at most Options.Lease, then another node attempts them.
package notify

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ivrd/ivrd/internal/metrics"
	"github.com/ivrd/ivrd/internal/outbound"
	"github.com/ivrd/ivrd/internal/store"
)

// Options configure a Queue. Zero values take the defaults noted.
type Options struct {
	// Client sends the POSTs. Default: 10 s timeout, redirects not followed (a 3xx is a
	// failed attempt), keep-alive connections for every worker.
	Client *http.Client
	Log    *slog.Logger                       // default slog.Default()
	Tokens func(appID string) (string, error) // an app's access token, the signing key (required)
	// Workers bounds concurrent deliveries (default 32).
	Workers int
	// Retries wait MinBackoff, 2×, 4× ... capped at MaxBackoff (defaults 1 s, 5 min); an item
	// still undelivered MaxAge after it was queued (default 24 h) is given up as failed.
	MinBackoff, MaxBackoff, MaxAge time.Duration
	// Retain is how long delivered and failed items are kept (default 7 days).
	Retain time.Duration
	// Outbound is where deliveries may connect (nil: anywhere); used by the default Client.
	// Environment proxies are never used.
	Outbound *outbound.Policy
	// OnStoreError, if set, hears every failed write to the store (e.g. to look at the disk).
	OnStoreError func(error)
	// Node names this queue's claims on outbox items (default: a random name per Queue).
	// Queues sharing a store need distinct names; a node that keeps its name across restarts
	// gets its claims from before back at once when it starts again.
	Node string
	// Lease is how long an item is claimed for one attempt (default 20 s): an attempt is cut
	// off at half of it, and a node that dies delays the items it was attempting (and the
	// rest of their sessions) by at most this.
	Lease time.Duration
	// Metrics counts deliveries (nil: not counted).
	Metrics *metrics.Notifications
}

// Queue is the outbox. Notify may be called at any time, also when Run is not running.
type Queue struct {
	st      *store.Store
	o       Options
	wake    chan struct{}
	running atomic.Bool
	spool   spool
}

// New returns a queue over st.
func New(st *store.Store, o Options) *Queue {
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.Client == nil {
		o.Client = defaultClient(o.Workers, o.Outbound)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.Retain <= 0 {
		o.Retain = 7 * 24 * time.Hour
	}
	if o.Node == "" {
		o.Node = store.NewNodeID()
	}
	if o.Lease <= 0 {
		o.Lease = 20 * time.Second
	}
	return &Queue{st: st, o: o, wake: make(chan struct{}, 1)}
}

func defaultClient(workers int, policy *outbound.Policy) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = workers
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: policy.Transport(tr, 10*time.Second),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a POST must not turn into a GET of the Location
		},
	}
}

// Notify queues a notification to target for an app. See NotifySession.
func (q *Queue) Notify(appID, target string, params url.Values) error {
	return q.NotifySession(appID, "", target, params)
}

// NotifySession queues a notification whose delivery keeps its order among those with the
// same sessionID (an empty sessionID means no ordering). target must be an absolute http(s)
// URL; it is POSTed to as given. The body is target's query parameters plus params, params
// winning on a clash, form-encoded and signed now with the app's access token. When
// NotifySession returns nil the notification is in the database, or, while the store cannot
// take it, held in memory until it can (it is lost only if the process ends before).
func (q *Queue) NotifySession(appID, sessionID, target string, params url.Values) error {
	return q.NotifyOnce(newDeliveryID(), appID, sessionID, target, params)
}

// NotifyOnce is NotifySession under the caller's delivery id: queueing the same id again
// (a repeat after a crash) stores nothing new, so the app gets it once.
func (q *Queue) NotifyOnce(deliveryID, appID, sessionID, target string, params url.Values) error {
	if deliveryID == "" {
		return errors.New("notify: empty delivery id")
	}
	u, err := checkTarget(target)
	if err != nil {
		return err
	}
	if q.o.Tokens == nil {
		return errors.New("notify: no token source configured")
	}
	token, err := q.o.Tokens(appID)
	if err != nil {
		return fmt.Errorf("notify: access token of app %s: %w", appID, err)
	}
	body := Body(u, params)
	err = q.enqueue(store.OutboxItem{
		DeliveryID: deliveryID,
		AppID:      appID,
		SessionKey: sessionID,
		Target:     target,
		Body:       body,
		Signature:  Sign(token, body),
		CreatedAt:  time.Now().UTC().Truncate(time.Microsecond),
	})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	q.wakeRun()
	return nil
}

// RetryNow makes outbox item id of appID ("": any app) due at once, a failed one pending again
// (it then gets one more attempt, or more while it is younger than MaxAge), and wakes Run.
// An item that is delivered, absent or another app's is an error wrapping store.ErrNotFound.
func (q *Queue) RetryNow(id int64, appID string) error {
	it, err := q.st.RetryOutbox(id, appID, time.Now())
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	q.o.Log.Info("notify: retry now", "delivery_id", it.DeliveryID, "app", it.AppID)
	q.wakeRun()
	return nil
}

// wakeRun wakes Run; one pending wake-up covers any number of calls.
func (q *Queue) wakeRun() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// checkTarget accepts absolute http and https URLs with a host.
func checkTarget(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("notify: target: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("notify: target %q is not an absolute http(s) URL", redact(target))
	}
	return u, nil
}

// Body returns the form body for a notification to u: u's query parameters plus params, a
// key in params replacing all of u's values for that key. Keys are sorted.
func Body(u *url.URL, params url.Values) []byte {
	form, _ := url.ParseQuery(u.RawQuery) // keep what parses of a malformed query
	if form == nil {
		form = url.Values{}
	}
	for k, v := range params {
		form[k] = append([]string(nil), v...)
	}
	return []byte(form.Encode())
}

func newDeliveryID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("notify: crypto/rand: " + err.Error())
	}
	return "dlv_" + hex.EncodeToString(b)
}

// redact drops a URL's query (it may carry app secrets) for logs.
func redact(target string) string {
	s, _, _ := strings.Cut(target, "?")
	return s
}
