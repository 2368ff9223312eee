package server

import (
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/recording"
)

// recoverSessions finishes what a crash or kill interrupted: every session still live in the
// journal is over (its SIP dialog died with the process). A Monitor recording is cut at its last
// whole MP3 frame, stored and handed to the app; owed block notifications go out with
// call_state=ended. Each session is settled at most once: it is journaled as ended afterwards.
func (s *Server) recoverSessions() error {
	rows, err := s.st.UnfinishedSessions()
	if err != nil {
		return err
	}
	for _, row := range rows {
		var rec ivr.SessionRecord
		if err := json.Unmarshal(row.Data, &rec); err != nil {
			s.log.Error("recover: bad session record", "session", row.ID, "err", err)
			continue
		}
		end, url := time.Now(), ""
		if m := rec.Monitor; m != nil && !m.Notified {
			res, err := recording.Recover(s.rec.rec.PartPath(m.RecordingID))
			if errors.Is(err, os.ErrNotExist) { // finished, but not yet stored
				res.Path = s.rec.rec.Path(m.RecordingID)
				res.Duration, err = recording.MP3Duration(res.Path)
			}
			switch {
			case errors.Is(err, os.ErrNotExist):
				s.log.Warn("recover: monitor recording missing", "session", rec.ID, "recording", m.RecordingID)
			case err != nil:
				s.log.Error("recover: monitor recording", "session", rec.ID, "err", err)
			default:
				end = m.StartedAt.Add(res.Duration)
				if url, err = s.rec.store(m.RecordingID, res.Path); err != nil {
					s.log.Error("recover: store recording", "session", rec.ID, "err", err)
				}
			}
		}
		if !rec.EndedAt.IsZero() {
			end = rec.EndedAt
		}
		done, out := s.billing.Recover(rec, end, url)
		for _, o := range out {
			if err := s.q.NotifySession(done.AppID, done.ID, o.Target, o.Params); err != nil {
				return err
			}
		}
		if err := (journal{s.st}).SaveSession(done); err != nil {
			return err
		}
		s.log.Info("recovered session", "session", rec.ID, "notifications", len(out), "monitor_url", url != "")
	}
	return nil
}
