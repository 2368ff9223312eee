package server

import (
	"encoding/json"
	"log/slog"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/notify"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
)

// recorders start the engine's recordings in the archive (recorder → blob store → signed URL).
type recorders struct{ a *recording.Archive }

func (r recorders) Start(info ivr.RecordingInfo) (ivr.Recording, error) {
	t, err := r.a.Start(info.ID, info.Start)
	if err != nil {
		return nil, err // a nil *Take must not become a non-nil ivr.Recording
	}
	return t, nil
}

// notifier queues engine notifications in the durable outbox, once per delivery id.
type notifier struct{ q *notify.Queue }

func (n notifier) Notify(x ivr.Notification) error {
	return n.q.NotifyOnce(x.DeliveryID, x.AppID, x.SessionID, x.Target, x.Params)
}

// journal keeps session records, and their timelines, in the store, as sessions of this node.
type journal struct {
	st   *store.Store
	log  *slog.Logger
	node string
}

func (j journal) SaveSession(s ivr.SessionRecord, steps []ivr.Entry) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	events := make([]store.SessionEvent, len(steps))
	for i, e := range steps {
		if events[i].Data, err = json.Marshal(e); err != nil {
			return err
		}
		events[i].Step, events[i].At, events[i].Event = e.Step, e.At, e.Event
	}
	return j.st.SaveSession(store.SessionRow{ID: s.ID, AppID: s.AppID, State: string(s.Phase), Data: data, Node: j.node}, events...)
}

func (j journal) Unfinished() ([]ivr.SessionRecord, error) {
	rows, err := j.st.AdoptUnfinishedSessions(j.node)
	if err != nil {
		return nil, err
	}
	out := make([]ivr.SessionRecord, 0, len(rows))
	for _, row := range rows {
		rec, err := ivr.DecodeRecord(row.Data)
		if err != nil {
			j.log.Error("recover: bad session record", "session", row.ID, "err", err)
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}
