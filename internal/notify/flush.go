package notify

import (
	"context"
	"time"
)

// flushPoll is how often Flush looks at what is still due.
const flushPoll = 50 * time.Millisecond

// Flush waits, while Run runs, until no notification is due any more: each one queued so far
// has been delivered, given up, or failed an attempt and waits out its backoff (which Flush
// does not wait for). It returns when that is so or when ctx ends, with the number still due
// or held in memory. A server stopping calls it before stopping Run, so that the notifications
// of its last calls go out now rather than at the next start.
func (q *Queue) Flush(ctx context.Context) int {
	t := time.NewTicker(flushPoll)
	defer t.Stop()
	for {
		due, err := q.st.DueOutbox(time.Now(), 1000)
		n := len(due) + q.Held()
		if err == nil && n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
	}
}
