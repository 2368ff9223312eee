package console

import (
	"net/http"
	"net/url"

	"github.com/ivrd/ivrd/internal/recording"
)

// demoView is the demo page: how to call the demo, its calls now, and its recordings (the
// catalog's recordings of the demo app: they outlive restarts).
type demoView struct {
	Demo Demo
	Live liveView
	Recs recordingsView
}

func (c *Console) demoPage(w http.ResponseWriter, r *http.Request, s session) {
	d := c.cfg.Demo
	switch {
	case d == nil:
		c.notFound(w, s, "The demo is off: ivrd routes no number to it.")
		return
	case !s.sees(d.AppID):
		v := c.view(s, "Demo", "demo", nil)
		v.Error = "The demo belongs to another app: sign in with its credentials (printed on ivrd's first start) or as the operator."
		c.render(w, http.StatusForbidden, "message", v)
		return
	}
	page := pageParam(r)
	es, total, err := c.cfg.Recordings.List(recording.Filter{AppID: d.AppID, Limit: recordingsPageSize, Offset: (page - 1) * recordingsPageSize})
	if err != nil {
		c.fail(w, s, "demo recordings", err)
		return
	}
	v := demoView{Demo: *d,
		Live: liveView{Calls: c.liveRows(d.AppID), Source: Prefix + "live.json?app=" + url.QueryEscape(d.AppID)},
		Recs: recordingsView{Recs: c.recRows(es), CSRF: c.keys.csrf(s.t.Nonce), Return: r.URL.RequestURI(),
			Pager: newPager(page, recordingsPageSize, len(es), total)}}
	c.render(w, http.StatusOK, "demo", c.view(s, "Demo", "demo", v))
}
