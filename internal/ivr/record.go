package ivr

import (
	"encoding/json"
	"maps"
	"strconv"
	"time"
)

// Call states as the API reports them (call_state).
const (
	StateRinging = "ringing"
	StateOngoing = "ongoing"
	StateEnded   = "ended"
)

// Kinds of owed notification.
const (
	OwedAnswer  = "answer"  // the Answer notification of an incoming call
	OwedBlock   = "block"   // a block's own notification
	OwedEnd     = "end"     // the last notification again, saying the call ended
	OwedMonitor = "monitor" // the Monitor result (monitor_url) once the call has ended
)

// SessionRecord is the persisted state of one session: enough to answer API requests and,
// after a crash, to settle the session exactly as the live path would have (Engine.Recover).
// Only the transitions of machine change it.
type SessionRecord struct {
	ID        string `json:"id"`
	AppID     string `json:"app_id"`
	TxnRef    string `json:"txn_ref"`
	From      string `json:"from,omitempty"` // incoming calls
	To        string `json:"to,omitempty"`
	Dest      string `json:"dest,omitempty"` // calls placed by Dial
	AnswerURL string `json:"answer_url,omitempty"`

	Phase      Phase     `json:"phase"`
	Line       Line      `json:"line"`
	StartedAt  time.Time `json:"started_at"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	Cause      string    `json:"cause,omitempty"` // why the call ended (or could not be set up)

	Current *Running       `json:"current,omitempty"` // the block running now, if any
	Runs    int            `json:"runs,omitempty"`    // blocks accepted so far (numbers runs)
	Owed    []Owed         `json:"owed,omitempty"`    // notifications owed and not known to be queued
	NextID  int            `json:"next_id,omitempty"` // the last delivery number given
	Last    *Owed          `json:"last,omitempty"`    // the latest final Answer/block notification
	Monitor *MonitorRecord `json:"monitor,omitempty"`
	Steps   int            `json:"steps,omitempty"` // timeline entries written so far

	// Dialog is the call's SIP dialog as its Call describes it (DialogCall): opaque to the
	// engine, kept so that a later start can end a call a crashed process was carrying.
	Dialog []byte `json:"dialog,omitempty"`
}

// Running is the block a session runs now.
type Running struct {
	Run  int    `json:"run"`
	Name string `json:"name"`
	End  bool   `json:"end,omitempty"` // an End block: requests meanwhile get error_session_ended
}

// Notice is a notification's content: the block, where it goes, and its own fields.
type Notice struct {
	Block  string            `json:"block"`
	Target string            `json:"target,omitempty"`
	Tag    string            `json:"tag,omitempty"`
	Extra  map[string]string `json:"extra,omitempty"`
}

// Owed is a notification the session owes the app. It is awaiting while its content is not
// known yet (a block still running, the Monitor recording not yet stored); it becomes final
// with a delivery number (ID) and a call_state, and leaves Owed once it is queued.
type Owed struct {
	ID        int    `json:"id,omitempty"` // delivery number, 0 while awaiting
	Kind      string `json:"kind"`
	Run       int    `json:"run,omitempty"` // the block run it reports (OwedBlock)
	Notice    Notice `json:"notice"`
	CallState string `json:"call_state,omitempty"`
	Recording string `json:"recording,omitempty"` // recording whose URL it carries (Record, Monitor)
}

func (o Owed) final() bool { return o.ID > 0 }

// MonitorRecord is the session's Monitor recording.
type MonitorRecord struct {
	RecordingID string        `json:"recording_id"`
	StartedAt   time.Time     `json:"started_at"`
	Pause       *MonitorPause `json:"pause,omitempty"`   // paused now (monitor/pause)
	Skipped     time.Duration `json:"skipped,omitempty"` // left out of the file by pauses with skip, resumed since
	Stored      bool          `json:"stored,omitempty"`  // finished and stored (URL empty: nothing usable)
	URL         string        `json:"url,omitempty"`
}

// MonitorPause is a pause of the Monitor recording: since when, and whether the paused part is
// silence in the file or left out of it (PauseSilence, PauseSkip).
type MonitorPause struct {
	Since    time.Time `json:"since"`
	Behavior string    `json:"behavior"`
}

// The pause_behavior values of monitor/pause.
const (
	PauseSilence = "silence"
	PauseSkip    = "skip"
)

// DeliveryID is the outbox delivery id of a session's owed notification number id: the same
// on every attempt to queue it, so the outbox stores it once whatever crashes in between.
func DeliveryID(session string, id int) string { return session + "-" + strconv.Itoa(id) }

// clone copies rec so that the copy shares nothing mutable with it.
func (r SessionRecord) clone() SessionRecord {
	c := r
	if r.Current != nil {
		x := *r.Current
		c.Current = &x
	}
	if r.Owed != nil {
		c.Owed = make([]Owed, len(r.Owed))
		for i, o := range r.Owed {
			c.Owed[i] = o.clone()
		}
	}
	if r.Last != nil {
		x := r.Last.clone()
		c.Last = &x
	}
	if r.Monitor != nil {
		x := *r.Monitor
		if x.Pause != nil {
			p := *x.Pause
			x.Pause = &p
		}
		c.Monitor = &x
	}
	c.Dialog = append([]byte(nil), r.Dialog...)
	return c
}

func (o Owed) clone() Owed {
	o.Notice.Extra = maps.Clone(o.Notice.Extra)
	return o
}

// DecodeRecord reads a journaled session record, also one written before phases existed.
func DecodeRecord(data []byte) (SessionRecord, error) {
	var rec SessionRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, err
	}
	if rec.Phase != "" {
		return rec, nil
	}
	var old legacyRecord
	if err := json.Unmarshal(data, &old); err != nil {
		return rec, err
	}
	return old.upgrade(), nil
}

// legacyRecord is the journal's format before phases: a call state, the block running
// (pending), the last notification sent, and whether the Monitor result went out.
type legacyRecord struct {
	SessionRecord
	State   string  `json:"state"`
	Last    *Notice `json:"last"`
	Pending *Notice `json:"pending"`
	Monitor *struct {
		RecordingID string    `json:"recording_id"`
		Target      string    `json:"target"`
		Tag         string    `json:"tag"`
		StartedAt   time.Time `json:"started_at"`
		Notified    bool      `json:"notified"`
	} `json:"monitor"`
}

// upgrade turns a legacy record into one Recover settles as the legacy recovery did.
func (l legacyRecord) upgrade() SessionRecord {
	rec := l.SessionRecord
	rec.Owed, rec.Last, rec.Monitor, rec.Current = nil, nil, nil, nil
	rec.Phase, rec.Line = PhaseRunning, LineUp
	switch {
	case l.State == StateRinging:
		rec.Line = LineRinging
	case l.State == StateEnded:
		rec.Phase, rec.Line = PhaseEnding, LineDown
	}
	if l.Last != nil {
		state := StateOngoing
		if l.Last.Block == "answer" {
			state = StateRinging
		}
		if l.State == StateEnded || l.Last.Block == "hangup" {
			state = StateEnded // the legacy engine had told the end already
		}
		rec.Last = &Owed{Kind: OwedBlock, Notice: *l.Last, CallState: state}
	}
	if p := l.Pending; p != nil && p.Block != "hold" && l.State != StateEnded {
		rec.Runs++
		rec.Current = &Running{Run: rec.Runs, Name: p.Block}
		rec.Owed = append(rec.Owed, Owed{Kind: OwedBlock, Run: rec.Runs, Notice: *p})
	}
	if m := l.Monitor; m != nil {
		rec.Monitor = &MonitorRecord{RecordingID: m.RecordingID, StartedAt: m.StartedAt, Stored: m.Notified}
		if !m.Notified {
			rec.Owed = append(rec.Owed, Owed{Kind: OwedMonitor, Notice: Notice{Block: "monitor", Target: m.Target, Tag: m.Tag}, Recording: m.RecordingID})
		}
	}
	return rec
}
