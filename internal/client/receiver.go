package client

import (
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/notify"
)

// Notification is one notification as received.
type Notification struct {
	At         time.Time  // arrival
	Path       string     // the URL path it was posted to
	Params     url.Values // the form body
	DeliveryID string     // X-Ivrd-Delivery-Id
	Attempt    string     // X-Ivrd-Attempt
}

// Receiver is the http.Handler of an app's notify URLs. It accepts POSTs whose
// X-Hoiio-Signature verifies with the app's token, answers 200, drops a delivery id it has
// already handled (ivrd retries until it gets a 2xx), and passes the rest to Handle.
type Receiver struct {
	Token  func() string        // the app's current access token
	Handle func(n Notification) // called once per delivery id, before the 200 is written
	// BadSignature, if set, is told of every refused request (answered 403).
	BadSignature func(r *http.Request, body []byte)
	// Duplicate, if set, is told of every repeated delivery (answered 200, not handled).
	Duplicate func(n Notification)

	mu   sync.Mutex
	seen map[string]bool
	ring []string // the ids in seen, oldest first, at most maxSeen
}

// maxSeen bounds how many delivery ids a Receiver remembers.
const maxSeen = 100000

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost || !notify.Verify(rc.Token(), body, r.Header.Get(notify.HeaderSignature)) {
		if rc.BadSignature != nil {
			rc.BadSignature(r, body)
		}
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	p, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	n := Notification{At: now, Path: r.URL.Path, Params: p, DeliveryID: r.Header.Get(notify.HeaderDeliveryID),
		Attempt: r.Header.Get(notify.HeaderAttempt)}
	if !rc.first(n.DeliveryID) {
		if rc.Duplicate != nil {
			rc.Duplicate(n)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	rc.Handle(n)
	w.WriteHeader(http.StatusOK)
}

// first records id and reports whether it is new. A missing id counts as a duplicate.
func (rc *Receiver) first(id string) bool {
	if id == "" {
		return false
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen == nil {
		rc.seen = map[string]bool{}
	}
	if rc.seen[id] {
		return false
	}
	rc.seen[id] = true
	rc.ring = append(rc.ring, id)
	if len(rc.ring) > maxSeen {
		delete(rc.seen, rc.ring[0])
		rc.ring = rc.ring[1:]
	}
	return true
}
