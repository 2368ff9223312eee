package ivr

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultZone is the time zone of dates when none is configured: GMT+8, the original service's.
var DefaultZone = time.FixedZone("GMT+8", 8*3600)

// Billing turns a call's length into the final call fields.
type Billing struct {
	Location *time.Location     // for date; default DefaultZone
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
		loc = DefaultZone
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

// noticeParams builds a notification body for n with call_state state.
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

// notification is owed item o of rec as the Notifier takes it.
func (b Billing) notification(rec SessionRecord, o Owed) Notification {
	return Notification{DeliveryID: DeliveryID(rec.ID, o.ID), AppID: rec.AppID, SessionID: rec.ID,
		Target: o.Notice.Target, Params: b.noticeParams(rec, o.Notice, o.CallState)}
}
