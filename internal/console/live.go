package console

import (
	"encoding/json"
	"net/http"
)

// liveRow is one call in progress, on the live page and in live.json.
type liveRow struct {
	Session   string `json:"session"`
	App       string `json:"app"`
	From      string `json:"from"`
	To        string `json:"to"`
	Started   string `json:"started"`
	Duration  string `json:"duration"`
	Block     string `json:"block"` // "" between blocks
	Phase     string `json:"phase"`
	Line      string `json:"line"`
	Recording bool   `json:"recording"`
	Paused    bool   `json:"paused"`
}

func (c *Console) liveRows(appID string) []liveRow {
	now := c.now()
	calls := c.cfg.Live.Live(appID)
	out := make([]liveRow, 0, len(calls))
	for _, x := range calls {
		to := x.To
		if to == "" {
			to = x.Dest
		}
		out = append(out, liveRow{Session: x.Session, App: x.AppID, From: x.From, To: to,
			Started: x.Started.In(c.cfg.Zone).Format("2006-01-02 15:04:05"), Duration: formatClock(now.Sub(x.Started)),
			Block: x.Block, Phase: string(x.Phase), Line: string(x.Line), Recording: x.Recording, Paused: x.Paused})
	}
	return out
}

// liveView is the live page's data (the demo page shows the demo app's calls with it too).
type liveView struct {
	Calls    []liveRow
	Operator bool   // show each call's app
	Source   string // live.json, polled by the page
}

func (c *Console) livePage(w http.ResponseWriter, r *http.Request, s session) {
	c.render(w, http.StatusOK, "live", c.view(s, "Live calls", "live", liveView{Calls: c.liveRows(s.scope()),
		Operator: s.Role == roleOperator, Source: Prefix + "live.json"}))
}

// liveJSON answers {"calls":[...]}: the calls in progress the principal sees, or with
// ?app=ID those of one app it sees.
func (c *Console) liveJSON(w http.ResponseWriter, r *http.Request, s session) {
	scope := s.scope()
	if app := r.URL.Query().Get("app"); app != "" {
		if !s.sees(app) {
			http.Error(w, `{"error":"another app"}`, http.StatusForbidden)
			return
		}
		scope = app
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Calls []liveRow `json:"calls"`
	}{c.liveRows(scope)})
}

// view makes a page's view for s.
func (c *Console) view(s session, title, section string, data any) view {
	return view{Title: title, Section: section, Who: s.principal, CSRF: c.keys.csrf(s.t.Nonce), Data: data,
		Demo: c.cfg.Demo != nil && s.sees(c.cfg.Demo.AppID)}
}
