package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
)

// sessionRow is a session in a list, or at the head of its timeline.
type sessionRow struct {
	ID, App, From, To   string
	Started, Ended      time.Time
	Answered            time.Time
	Duration            time.Duration // -1 while the call is up
	Phase, Line, Cause  string
	Block               string // running now
	Monitor, MonitorURL string // the Monitor's recording id, and its stored URL
}

func sessionOf(row store.SessionRow) sessionRow {
	rec, err := ivr.DecodeRecord(row.Data)
	out := sessionRow{ID: row.ID, App: row.AppID, Phase: row.State, Duration: -1}
	if err != nil {
		out.Cause = "unreadable record: " + err.Error()
		return out
	}
	out.From, out.To, out.Started, out.Answered, out.Ended = rec.From, rec.To, rec.StartedAt, rec.AnsweredAt, rec.EndedAt
	if out.To == "" {
		out.To = rec.Dest
	}
	out.Phase, out.Line, out.Cause = string(rec.Phase), string(rec.Line), rec.Cause
	if !rec.EndedAt.IsZero() {
		out.Duration = rec.EndedAt.Sub(rec.StartedAt)
	}
	if rec.Current != nil {
		out.Block = rec.Current.Name
	}
	if rec.Monitor != nil {
		out.Monitor = rec.Monitor.RecordingID
	}
	return out
}

const sessionsPageSize = 50

type sessionsView struct {
	Rows     []sessionRow
	Operator bool
	Pager    pager
}

func (c *Console) sessionsPage(w http.ResponseWriter, r *http.Request, s session) {
	page := pageParam(r)
	rows, err := c.cfg.Store.RecentSessions(s.scope(), sessionsPageSize, (page-1)*sessionsPageSize)
	if err != nil {
		c.fail(w, s, "sessions", err)
		return
	}
	v := sessionsView{Operator: s.Role == roleOperator, Pager: newPager(page, sessionsPageSize, len(rows), -1)}
	for _, row := range rows {
		v.Rows = append(v.Rows, sessionOf(row))
	}
	c.render(w, http.StatusOK, "sessions", c.view(s, "Sessions", "sessions", v))
}

// blockRow is one block a session ran: its request's parameters, and how it ended.
type blockRow struct {
	Run              int
	Block            string
	Event            string // accept, force (a forced Hangup), unhold, dial
	Params           []kv
	Accepted, Done   time.Time
	Status           string // running, or done with its call_state
	Result           []kv
	Recording, Pause string
}

// stepRow is one step of the timeline (an ivr.Entry).
type stepRow struct {
	Step                        int
	At                          time.Time
	Offset                      time.Duration // since the session began
	Event, Block, Phase, Line   string
	CallState, Delivery, Target string
	Cause                       string
	Run                         int
	Params, Result              []kv
}

// noteRow is one notification in the outbox, with its attempts.
type noteRow struct {
	ID                       int64
	DeliveryID, App, Session string
	Block, CallState, Target string
	State, LastError         string
	Created, NextAt, Updated time.Time
	Attempts                 int
	Tries                    []attemptRow
	Fields                   []kv
	Retry                    bool // pending or failed: "retry now"
}

// attemptRow is one delivery attempt.
type attemptRow struct {
	N        int
	At       time.Time
	Duration time.Duration
	Code     int // 0: no answer
	Error    string
}

type timelineView struct {
	S          sessionRow
	Blocks     []blockRow
	Steps      []stepRow
	Notes      notesView
	Recordings recordingsView
	Operator   bool
}

// notesView lists notifications: a session's, the outbox's.
type notesView struct {
	Notes    []noteRow
	Operator bool
	CSRF     string
	Return   string // where "retry now" comes back to
}

// timeline turns a session's journaled steps into blocks and steps.
func timeline(events []store.SessionEvent, start time.Time) ([]blockRow, []stepRow) {
	var blocks []blockRow
	runs := map[int]int{} // run → index in blocks
	steps := make([]stepRow, 0, len(events))
	for _, ev := range events {
		var e ivr.Entry
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			steps = append(steps, stepRow{Step: ev.Step, At: ev.At, Event: ev.Event, Cause: "unreadable step: " + err.Error()})
			continue
		}
		st := stepRow{Step: e.Step, At: e.At, Event: e.Event, Block: e.Block, Phase: string(e.Phase), Line: string(e.Line),
			CallState: e.CallState, Delivery: e.Delivery, Target: e.Target, Cause: e.Cause, Run: e.Run,
			Params: sortedKV(e.Params), Result: sortedKV(e.Result)}
		if !start.IsZero() {
			st.Offset = e.At.Sub(start)
		}
		steps = append(steps, st)
		switch i, seen := runs[e.Run]; {
		case e.Run == 0:
		case !seen && e.Params != nil:
			runs[e.Run] = len(blocks)
			blocks = append(blocks, blockRow{Run: e.Run, Block: e.Block, Event: e.Event, Params: st.Params, Accepted: e.At, Status: "running"})
		case seen && e.Event == "recording":
			blocks[i].Recording = e.Result["recording"]
		case seen && e.Event == "done":
			blocks[i].Done, blocks[i].Result = e.At, st.Result
			blocks[i].Status = "done"
			if e.CallState != "" {
				blocks[i].Status += ", call_state=" + e.CallState
			}
		}
	}
	return blocks, steps
}

func (c *Console) timelinePage(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	row, err := c.cfg.Store.Session(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.sees(row.AppID)) {
		c.notFound(w, s, "No session "+id+".")
		return
	}
	if err != nil {
		c.fail(w, s, "session", err)
		return
	}
	op, csrf, ret := s.Role == roleOperator, c.keys.csrf(s.t.Nonce), r.URL.RequestURI()
	v := timelineView{S: sessionOf(row), Operator: op,
		Notes: notesView{Operator: op, CSRF: csrf, Return: ret}, Recordings: recordingsView{Operator: op, CSRF: csrf, Return: ret}}
	events, err := c.cfg.Store.SessionEvents(id)
	if err != nil {
		c.fail(w, s, "session events", err)
		return
	}
	v.Blocks, v.Steps = timeline(events, v.S.Started)
	if v.Notes.Notes, err = c.notes(store.OutboxFilter{SessionID: id}); err != nil {
		c.fail(w, s, "session notifications", err)
		return
	}
	recs, _, err := c.cfg.Recordings.List(recording.Filter{AppID: s.scope(), SessionID: id})
	if err != nil && !errors.Is(err, recording.ErrNotFound) {
		c.fail(w, s, "session recordings", err)
		return
	}
	v.Recordings.Recs = c.recRows(recs)
	c.render(w, http.StatusOK, "session", c.view(s, "Session "+id, "sessions", v))
}

// notes lists outbox items with their attempts.
func (c *Console) notes(f store.OutboxFilter) ([]noteRow, error) {
	items, err := c.cfg.Store.ListOutbox(f)
	if err != nil {
		return nil, err
	}
	out := make([]noteRow, 0, len(items))
	for _, it := range items {
		n := noteRow{ID: it.ID, DeliveryID: it.DeliveryID, App: it.AppID, Session: it.SessionKey, Target: it.Target,
			State: it.State, LastError: it.LastError, Created: it.CreatedAt, NextAt: it.NextAt, Updated: it.UpdatedAt,
			Attempts: it.Attempts, Fields: formKV(it.Body), Retry: it.State != store.OutboxDelivered}
		for _, f := range n.Fields {
			switch f.K {
			case "ivr_block":
				n.Block = f.V
			case "call_state":
				n.CallState = f.V
			}
		}
		tries, err := c.cfg.Store.OutboxAttempts(it.ID)
		if err != nil {
			return nil, err
		}
		for _, a := range tries {
			n.Tries = append(n.Tries, attemptRow{N: a.Attempt, At: a.At, Duration: a.Duration, Code: a.StatusCode, Error: a.Error})
		}
		out = append(out, n)
	}
	return out, nil
}

// notFound answers 404 with the console's page.
func (c *Console) notFound(w http.ResponseWriter, s session, msg string) {
	v := c.view(s, "Not found", "", nil)
	v.Error = msg
	c.render(w, http.StatusNotFound, "message", v)
}

// fail answers 500 for a failure to read what a page shows (logged).
func (c *Console) fail(w http.ResponseWriter, s session, what string, err error) {
	c.log.Error("console: read "+what, "err", err)
	v := c.view(s, "Error", "", nil)
	v.Error = "Cannot read the " + strings.TrimSpace(what) + " just now."
	c.render(w, http.StatusInternalServerError, "message", v)
}
