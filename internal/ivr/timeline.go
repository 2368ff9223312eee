package ivr

import "time"

// Entry is one step of a session's timeline: a transition, or a notification becoming owed
// or queued. Entries are journaled with the record they led to (one write per transition),
// so a console can show every block with its parameters, its outcome and its notifications.
type Entry struct {
	Step      int               `json:"step"` // 1, 2, ... per session
	At        time.Time         `json:"at"`
	Event     string            `json:"event"` // a transition name, or "owe" / "queued"
	Phase     Phase             `json:"phase"` // after the step
	Line      Line              `json:"line"`
	Run       int               `json:"run,omitempty"`
	Block     string            `json:"block,omitempty"`
	Params    map[string]string `json:"params,omitempty"`     // accept: the request's parameters
	Result    map[string]string `json:"result,omitempty"`     // done: the block's notification fields
	CallState string            `json:"call_state,omitempty"` // owe, done
	Delivery  string            `json:"delivery,omitempty"`   // owe, queued: the delivery id
	Target    string            `json:"target,omitempty"`     // owe
	Cause     string            `json:"cause,omitempty"`      // down, fail, timeout, dialed
}

// Entry events beside the transitions.
const (
	stepOwe = "owe" // a notification became final and owed (Delivery set, or none: no notify_url)
)

// secretParams are request parameters never written to the timeline.
var secretParams = map[string]bool{"access_token": true}

// timelineParams copies a request's parameters for the timeline.
func timelineParams(p Params) map[string]string {
	out := make(map[string]string, len(p))
	for k, v := range p {
		if !secretParams[k] {
			out[k] = v
		}
	}
	return out
}
