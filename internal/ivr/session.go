package ivr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Call states as the API reports them.
const (
	StateRinging = "ringing"
	StateOngoing = "ongoing"
	StateEnded   = "ended"
)

// SessionRecord is the persisted state of one call: enough to answer API requests and, after a
// crash, to finish the call's recordings and notifications.
type SessionRecord struct {
	ID         string         `json:"id"`
	AppID      string         `json:"app_id"`
	TxnRef     string         `json:"txn_ref"`
	From       string         `json:"from,omitempty"` // incoming calls
	To         string         `json:"to,omitempty"`
	Dest       string         `json:"dest,omitempty"` // calls placed by Dial
	State      string         `json:"state"`
	AnswerURL  string         `json:"answer_url,omitempty"`
	StartedAt  time.Time      `json:"started_at"`
	AnsweredAt time.Time      `json:"answered_at,omitzero"`
	EndedAt    time.Time      `json:"ended_at,omitzero"`
	Last       *Notice        `json:"last,omitempty"`    // the last block notification sent
	Pending    *Notice        `json:"pending,omitempty"` // the block executing now
	Monitor    *MonitorRecord `json:"monitor,omitempty"`
}

// Notice is a block's notification: where it goes and what it says beyond the call fields.
type Notice struct {
	Block  string            `json:"block"`
	Target string            `json:"target,omitempty"`
	Tag    string            `json:"tag,omitempty"`
	Extra  map[string]string `json:"extra,omitempty"`
}

// MonitorRecord is a running or finished Monitor recording.
type MonitorRecord struct {
	RecordingID string    `json:"recording_id"`
	Target      string    `json:"target"` // monitor_notify_url, else notify_url
	Tag         string    `json:"tag,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	Notified    bool      `json:"notified,omitempty"`
}

// Billing turns a call's length into the final call fields.
type Billing struct {
	Location *time.Location     // for date; default GMT+8
	Currency string             // default "SGD"
	Rate     float64            // per started minute; default 0
	Rates    map[string]float64 // per-minute rate by number prefix (longest wins); else Rate
}

// rateFor is the per-minute rate of a call with the other party at number.
func (b Billing) rateFor(number string) float64 {
	best, rate := -1, b.Rate
	for p, r := range b.Rates {
		if len(p) > best && strings.HasPrefix(number, p) {
			best, rate = len(p), r
		}
	}
	return rate
}

// finalFields adds the fields every call_state=ended notification carries.
func (b Billing) finalFields(v url.Values, rec SessionRecord) {
	loc := b.Location
	if loc == nil {
		loc = time.FixedZone("GMT+8", 8*3600)
	}
	v.Set("date", rec.StartedAt.In(loc).Format("2006-01-02 15:04:05"))
	minutes := 0
	if !rec.AnsweredAt.IsZero() && rec.EndedAt.After(rec.AnsweredAt) {
		minutes = int(math.Ceil(rec.EndedAt.Sub(rec.AnsweredAt).Minutes()))
	}
	cur := b.Currency
	if cur == "" {
		cur = "SGD"
	}
	other := rec.From // incoming calls are rated by the caller, outgoing by the destination
	if rec.Dest != "" {
		other = rec.Dest
	}
	rate := b.rateFor(other)
	v.Set("duration", strconv.Itoa(minutes))
	v.Set("currency", cur)
	v.Set("rate", money(rate))
	v.Set("debit", money(rate*float64(minutes)))
}

func money(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

// noticeParams builds a notification body for n in the call's current state.
func (b Billing) noticeParams(rec SessionRecord, n Notice, state string) url.Values {
	v := url.Values{}
	v.Set("ivr_block", n.Block)
	v.Set("session", rec.ID)
	v.Set("txn_ref", rec.TxnRef)
	if rec.From != "" {
		v.Set("from", rec.From)
	}
	if rec.To != "" {
		v.Set("to", rec.To)
	}
	if rec.Dest != "" {
		v.Set("dest", rec.Dest)
	}
	if n.Tag != "" {
		v.Set("tag", n.Tag)
	}
	for k, x := range n.Extra {
		v.Set(k, x)
	}
	v.Set("call_state", state)
	if state == StateEnded {
		b.finalFields(v, rec)
	}
	return v
}

// monitorParams is the notification that hands over a finished Monitor recording.
func (b Billing) monitorParams(rec SessionRecord, url string) url.Values {
	n := Notice{Block: "monitor", Tag: rec.Monitor.Tag, Extra: map[string]string{"monitor_url": url}}
	return b.noticeParams(rec, n, StateEnded)
}

func newID(prefix string, nbytes int) string {
	b := make([]byte, nbytes)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// session is the engine's live view of one call.
type session struct {
	jmu         sync.Mutex // serialises journal writes (see Engine.save)
	rec         SessionRecord
	call        Call
	busy        bool               // a block was accepted and has not notified yet
	endAccepted bool               // an End block was accepted (or the engine decided to hang up)
	ended       bool               // the call is over
	endNotified bool               // a notification with call_state=ended went out for the last block
	cancel      context.CancelFunc // cancels the running block (engine shutdown)
	seq         int                // number of the block started last
	recording   Recording          // running Monitor recording
	idleGen     int                // invalidates stale idle timers
	idle        *time.Timer
	taps        tapSet             // what the call's audio feeds (set on the call once answered)
	keys        keypad             // the caller's keys, for the block listening
	held        bool               // on Hold: only Unhold and forced Hangup are accepted
	unhold      func()             // stops the Hold loop
	holdDone    chan struct{}      // closed when the Hold loop has stopped
	dialCancel  context.CancelFunc // aborts an outbound call still ringing
}
