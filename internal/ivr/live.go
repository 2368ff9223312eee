package ivr

import (
	"sort"
	"time"
)

// LiveCall is a snapshot of one call in progress, as a console shows it. It is a copy: reading
// it changes nothing, and the session goes on changing only through its own transitions.
type LiveCall struct {
	Session  string
	AppID    string
	From, To string // incoming calls
	Dest     string // calls placed by Dial
	Started  time.Time
	Answered time.Time // zero until the call is answered
	Phase    Phase
	Line     Line
	Block    string // the block running now; "" between blocks
	// Recording: the Monitor recording runs (it started and the call has not ended); Paused:
	// it is paused by monitor/pause.
	Recording, Paused bool
}

// Live returns the calls in progress (their line is not down) of appID, or of every app when
// appID is "", oldest first. It only reads the sessions, under the engine's lock.
func (e *Engine) Live(appID string) []LiveCall {
	e.mu.Lock()
	out := make([]LiveCall, 0, len(e.sessions))
	for _, s := range e.sessions {
		r := &s.m.rec
		if r.Line == LineDown || r.Phase == PhaseEnded || (appID != "" && r.AppID != appID) {
			continue
		}
		c := LiveCall{Session: r.ID, AppID: r.AppID, From: r.From, To: r.To, Dest: r.Dest,
			Started: r.StartedAt, Answered: r.AnsweredAt, Phase: r.Phase, Line: r.Line}
		if r.Current != nil {
			c.Block = r.Current.Name
		}
		if m := r.Monitor; m != nil && !m.Stored {
			c.Recording, c.Paused = true, m.Pause != nil
		}
		out = append(out, c)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].Session < out[j].Session
	})
	return out
}
