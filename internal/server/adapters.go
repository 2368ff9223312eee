package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/notify"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
)

// recorders start the engine's recordings in the archive (recorder → blob store → catalog →
// signed URL), and find them again after a crash.
type recorders struct{ a *recording.Archive }

func (r recorders) Start(info ivr.RecordingInfo) (ivr.Recording, error) {
	t, err := r.a.Start(archiveInfo(info))
	if err != nil {
		return nil, err // a nil *Take must not become a non-nil ivr.Recording
	}
	return t, nil
}

func (r recorders) Recover(info ivr.RecordingInfo) (string, time.Duration, error) {
	return r.a.Recover(archiveInfo(info))
}

func archiveInfo(i ivr.RecordingInfo) recording.Info {
	return recording.Info{ID: i.ID, AppID: i.AppID, SessionID: i.SessionID, Kind: i.Kind, Start: i.Start, Channels: i.Channels, Log: i.Log}
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
	err = j.st.SaveSession(store.SessionRow{ID: s.ID, AppID: s.AppID, State: string(s.Phase), Data: data, Node: j.node}, events...)
	if errors.Is(err, store.ErrNotOwner) {
		return fmt.Errorf("%w (%w)", ivr.ErrNotOwner, err)
	}
	return err
}

func (j journal) Unfinished() ([]ivr.SessionRecord, error) {
	rows, err := j.st.AdoptUnfinishedSessions(j.node)
	if err != nil {
		return nil, err
	}
	return j.records(rows), nil
}

// records decodes session rows, leaving out (logged) those that do not decode.
func (j journal) records(rows []store.SessionRow) []ivr.SessionRecord {
	out := make([]ivr.SessionRecord, 0, len(rows))
	for _, row := range rows {
		rec, err := ivr.DecodeRecord(row.Data)
		if err != nil {
			j.log.Error("recover: bad session record", "session", row.ID, "err", err)
			continue
		}
		out = append(out, rec)
	}
	return out
}

// takeOver settles the sessions this node took over from a dead node: their calls are ended,
// their recordings finished from the pieces in the object store, their notifications queued.
func (j journal) takeOver(e *ivr.Engine, files ivr.RecordingFiles) func(dead string, rows []store.SessionRow) {
	return func(dead string, rows []store.SessionRow) {
		n := e.Settle(j.records(rows), files)
		j.log.Info("cluster: sessions of a dead node settled", "dead", dead, "settled", n, "taken", len(rows))
	}
}

// index keeps the recordings catalog's entries in the store.
type index struct{ st *store.Store }

var _ recording.Index = index{}

func entryOf(r store.Recording) recording.Entry {
	return recording.Entry{ID: r.ID, AppID: r.AppID, SessionID: r.SessionID, Kind: r.Kind, Started: r.StartedAt,
		Duration: r.Duration, Size: r.Size, Channels: r.Channels, Key: r.Key, Stored: r.StoredAt}
}

func entriesOf(rs []store.Recording) []recording.Entry {
	out := make([]recording.Entry, len(rs))
	for i, r := range rs {
		out[i] = entryOf(r)
	}
	return out
}

// notFound turns the store's ErrNotFound into the catalog's.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w (%w)", recording.ErrNotFound, err)
	}
	return err
}

func (x index) Put(e recording.Entry) error {
	return x.st.PutRecording(store.Recording{ID: e.ID, AppID: e.AppID, SessionID: e.SessionID, Kind: e.Kind, StartedAt: e.Started,
		Duration: e.Duration, Size: e.Size, Channels: e.Channels, Key: e.Key, StoredAt: e.Stored})
}

func (x index) Get(id string) (recording.Entry, error) {
	r, err := x.st.Recording(id)
	return entryOf(r), notFound(err)
}

func (x index) List(f recording.Filter) ([]recording.Entry, int, error) {
	rs, total, err := x.st.Recordings(store.RecordingFilter{AppID: f.AppID, SessionID: f.SessionID, From: f.From, To: f.To,
		Limit: f.Limit, Offset: f.Offset})
	return entriesOf(rs), total, err
}

func (x index) Delete(id string) error { return notFound(x.st.DeleteRecording(id)) }

func (x index) StoredBefore(t time.Time, limit int) ([]recording.Entry, error) {
	rs, err := x.st.RecordingsStoredBefore(t, limit)
	return entriesOf(rs), err
}

func (x index) SessionApp(id string) (string, error) {
	s, err := x.st.Session(id)
	return s.AppID, notFound(err)
}
