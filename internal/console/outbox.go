package console

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/ivrd/ivrd/internal/store"
)

// outboxLimit bounds the items of each state the outbox page lists.
const outboxLimit = 200

type outboxView struct {
	Pending, Failed notesView
	Limit           int
}

// outboxPage lists the notifications not delivered: pending (being tried, or waiting out
// their backoff) and failed (given up), each with its attempts and "retry now".
func (c *Console) outboxPage(w http.ResponseWriter, r *http.Request, s session) {
	nv := notesView{Operator: s.Role == roleOperator, CSRF: c.keys.csrf(s.t.Nonce), Return: r.URL.RequestURI()}
	v := outboxView{Pending: nv, Failed: nv, Limit: outboxLimit}
	var err error
	if v.Pending.Notes, err = c.notes(store.OutboxFilter{AppID: s.scope(), State: store.OutboxPending, Limit: outboxLimit}); err == nil {
		v.Failed.Notes, err = c.notes(store.OutboxFilter{AppID: s.scope(), State: store.OutboxFailed, Limit: outboxLimit})
	}
	if err != nil {
		c.fail(w, s, "outbox", err)
		return
	}
	c.render(w, http.StatusOK, "outbox", c.view(s, "Outbox", "outbox", v))
}

// retry makes a pending or failed notification due now (notify.Queue.RetryNow).
func (c *Console) retry(w http.ResponseWriter, r *http.Request, s session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil {
		err = c.cfg.Outbox.RetryNow(id, s.scope())
	}
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, strconv.ErrSyntax), errors.Is(err, strconv.ErrRange):
		c.notFound(w, s, "No pending or failed notification "+r.PathValue("id")+".")
		return
	case err != nil:
		c.fail(w, s, "outbox", err)
		return
	}
	http.Redirect(w, r, safeReturn(r.PostFormValue("return"), Prefix+"outbox"), http.StatusSeeOther)
}
