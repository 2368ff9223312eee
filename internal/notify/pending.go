package notify

import "github.com/ivrd/ivrd/internal/store"

// Pending returns how many notifications are queued and neither delivered nor given up: in
// the store, and held in memory while the store cannot take them.
func (q *Queue) Pending() (int, error) {
	n, err := q.st.CountOutbox(store.OutboxPending)
	return n + int(q.Held()), err
}
