package ivr

import (
	"fmt"
	"slices"
	"time"
)

// Recover settles every session the journal holds unfinished: those that were live when the
// server stopped (a crash or a kill; their calls died with the process) and those that were
// settling. files finds their recordings again (the Monitor's, and a Record block's cut short).
//
// Each goes through the same transitions as a live end: the call goes down ("crash") at the
// end of its Monitor recording if it had one (else now), settle makes what it owes final, the
// notifications are queued under their delivery ids (a notification queued before the crash
// is not queued twice), and the session is journaled ended. A session that cannot be settled
// now (a recording that cannot be read, the journal or outbox failing) is logged and left for
// the next start. Recover must run before the engine takes calls.
//
// A session whose call was still up when the process died has its call ended through
// Deps.Dialogs, from the dialog snapshot its Call gave (DialogCall), before it is settled.
func (e *Engine) Recover(files RecordingFiles) error {
	if e.d.Journal == nil {
		return nil
	}
	recs, err := e.d.Journal.Unfinished()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		n, err := e.recoverSession(rec, files)
		if err != nil {
			e.log.Error("recover: session left for the next start", "session", rec.ID, "err", err)
			continue
		}
		e.log.Info("recovered session", "session", rec.ID, "phase", rec.Phase, "notifications", n)
	}
	return nil
}

// recoverSession settles one journaled session and returns how many notifications it queued.
func (e *Engine) recoverSession(rec SessionRecord, files RecordingFiles) (int, error) {
	s := &session{m: machine{rec: rec.clone()}}
	m := &s.m
	end := rec.EndedAt
	urls := map[string]string{}
	for _, id := range recordingsOwed(rec) {
		url, length, err := files.Recover(id)
		if err != nil {
			return 0, fmt.Errorf("recording %s: %w", id, err)
		}
		urls[id] = url
		if mon := rec.Monitor; mon != nil && mon.RecordingID == id && end.IsZero() {
			end = mon.StartedAt.Add(length) // the call lasted at least as long as its recording
		}
	}
	if end.IsZero() {
		end = time.Now()
	}
	if m.rec.Line != LineDown {
		if len(rec.Dialog) > 0 && e.d.Dialogs != nil {
			if err := e.d.Dialogs.EndDialog(rec.Dialog); err != nil {
				e.log.Warn("recover: ending the call", "session", rec.ID, "err", err)
			}
		}
		if err := m.down("crash", end); err != nil {
			return 0, err
		}
	}
	if m.rec.Phase == PhaseEnding {
		if err := m.settle(urls); err != nil {
			return 0, err
		}
	}
	n := len(m.ready())
	if err := e.flush(s); err != nil {
		return 0, err
	}
	if err := m.close(); err != nil {
		return 0, err
	}
	return n, e.flush(s)
}

// recordingsOwed lists the recordings whose URL rec still owes the app.
func recordingsOwed(rec SessionRecord) []string {
	var ids []string
	for _, o := range rec.Owed {
		if o.Recording != "" && !o.final() && (o.Kind != OwedMonitor || rec.Monitor == nil || !rec.Monitor.Stored) {
			ids = append(ids, o.Recording)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
