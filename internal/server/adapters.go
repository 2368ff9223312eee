package server

import (
	"encoding/json"
	"net/url"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/notify"
	"github.com/ivrd/ivrd/internal/recording"
	"github.com/ivrd/ivrd/internal/store"
)

// recorders start recordings that, when finished, move into the blob store and come back as a
// signed URL: SIP leg → recorder → blob store → (engine) → notifier.
type recorders struct {
	rec    *recording.Recorder
	blobs  *blob.Local
	signer blob.Signer
}

func (r *recorders) Start(info ivr.RecordingInfo) (ivr.Recording, error) {
	rec, err := r.rec.Start(info.ID, info.Start)
	if err != nil {
		return nil, err
	}
	return &stored{Recording: rec, id: info.ID, r: r}, nil
}

// stored is a running recording that ends up in the blob store.
type stored struct {
	*recording.Recording
	id string
	r  *recorders
}

func (s *stored) Finish(end time.Time) (string, error) {
	res, err := s.Recording.Finish(end)
	if err != nil && res.Path == "" {
		return "", err
	}
	// A write failure mid-call (disk full) leaves what was written before, cut at a whole
	// frame (the recorder logged the failure): that recording is handed to the app.
	return s.r.store(s.id, res.Path)
}

// store moves a finished recording file into the blob store and signs its URL.
func (r *recorders) store(id, path string) (string, error) {
	key := id + ".mp3"
	if err := r.blobs.PutFile(key, path); err != nil {
		return "", err
	}
	return r.signer.URL(key, time.Now()), nil
}

// notifier queues engine notifications in the durable outbox, in session order.
type notifier struct{ q *notify.Queue }

func (n notifier) Notify(appID, sessionID, target string, params url.Values) error {
	return n.q.NotifySession(appID, sessionID, target, params)
}

// journal keeps session records in the store.
type journal struct{ st *store.Store }

func (j journal) SaveSession(s ivr.SessionRecord) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	state := s.State
	if state == ivr.StateEnded && s.Monitor != nil && !s.Monitor.Notified {
		state = "finishing" // still owes the monitor notification: recovery must see it
	}
	return j.st.SaveSession(store.SessionRow{ID: s.ID, AppID: s.AppID, State: state, Data: data})
}
