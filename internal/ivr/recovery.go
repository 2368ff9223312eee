package ivr

import (
	"net/url"
	"time"
)

// Outgoing is a notification to queue.
type Outgoing struct {
	Target string
	Params url.Values
}

// Recover settles a session that was live when the server stopped (a crash or a kill): the call
// is over, ended at end. monitorURL is the URL of its recovered Monitor recording, if it had one.
// It returns the session as ended and the notifications the app is still owed: the block that
// was executing (or the last one) with call_state=ended, and the Monitor recording.
func (b Billing) Recover(rec SessionRecord, end time.Time, monitorURL string) (SessionRecord, []Outgoing) {
	wasEnded := rec.State == StateEnded
	rec.State = StateEnded
	if rec.EndedAt.IsZero() {
		rec.EndedAt = end
	}
	var out []Outgoing
	add := func(n *Notice) {
		if n != nil && n.Target != "" {
			out = append(out, Outgoing{n.Target, b.noticeParams(rec, *n, StateEnded)})
		}
	}
	switch {
	case wasEnded: // the block notifications went out before the stop
	case rec.Pending != nil && rec.Pending.Target != "":
		add(rec.Pending)
		rec.Last, rec.Pending = rec.Pending, nil
	case rec.Last != nil && rec.Last.Block != "hangup" && !(rec.Last.Block == "monitor" && rec.Monitor != nil):
		add(rec.Last) // also when the block running was silent (Hold) or had no notify_url
	}
	rec.Pending = nil
	if rec.Monitor != nil && !rec.Monitor.Notified && monitorURL != "" && rec.Monitor.Target != "" {
		out = append(out, Outgoing{rec.Monitor.Target, b.monitorParams(rec, monitorURL)})
		m := *rec.Monitor
		m.Notified = true
		rec.Monitor = &m
	}
	return rec, out
}
