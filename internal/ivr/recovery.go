package ivr

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
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
	e.Settle(recs, files)
	return nil
}

// recoverSession settles one journaled session and returns how many notifications it queued.
func (e *Engine) recoverSession(rec SessionRecord, files RecordingFiles) (int, error) {
	s := &session{log: e.log.With(calllog.Key, rec.ID), m: machine{rec: rec.clone()}}
	m := &s.m
	end := rec.EndedAt
	urls := map[string]string{}
	for _, info := range recordingsOwed(rec) {
		url, length, err := files.Recover(info)
		if err != nil {
			return 0, fmt.Errorf("recording %s: %w", info.ID, err)
		}
		urls[info.ID] = url
		if mon := rec.Monitor; mon != nil && mon.RecordingID == info.ID && end.IsZero() {
			end = monitorEnd(mon, length)
		}
	}
	if end.IsZero() {
		end = time.Now()
	}
	crashed := m.rec.Line != LineDown
	if crashed {
		if len(rec.Dialog) > 0 && e.d.Dialogs != nil {
			if err := e.d.Dialogs.EndDialog(rec.Dialog); err != nil {
				s.log.Warn("recover: ending the call", "err", err)
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
	if crashed { // the call's end was not logged nor counted by the process that carried it
		e.callOver(s, true)
	}
	if err := m.close(); err != nil {
		return 0, err
	}
	return n, e.flush(s)
}

// monitorEnd is when a call whose Monitor recording plays for length ended, at the least:
// the call lasted as long as its recording, and the parts pauses with skip left out of it
// (up to the pause it was in, if any).
func monitorEnd(mon *MonitorRecord, length time.Duration) time.Time {
	end := mon.StartedAt.Add(length + mon.Skipped)
	if p := mon.Pause; p != nil && p.Behavior == PauseSkip && p.Since.After(end) {
		end = p.Since
	}
	return end
}

// recordingsOwed lists the recordings whose URL rec still owes the app, sorted by id.
func recordingsOwed(rec SessionRecord) []RecordingInfo {
	var out []RecordingInfo
	for _, o := range rec.Owed {
		if o.Recording == "" || o.final() || (o.Kind == OwedMonitor && rec.Monitor != nil && rec.Monitor.Stored) {
			continue
		}
		if slices.ContainsFunc(out, func(i RecordingInfo) bool { return i.ID == o.Recording }) {
			continue
		}
		info := RecordingInfo{ID: o.Recording, AppID: rec.AppID, SessionID: rec.ID, Kind: "record"}
		if o.Kind == OwedMonitor {
			info.Kind = "monitor"
			if rec.Monitor != nil {
				info.Start = rec.Monitor.StartedAt
			}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b RecordingInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}
