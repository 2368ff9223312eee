package ivr

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// monitoring starts a Monitor on a new call (dual when channels says so) and returns the call,
// the session and its recording once the Monitor has notified.
func (r *rig) monitoring(p Params) (*fakeCall, string, *fakeRecording) {
	r.t.Helper()
	c, sid := r.incoming()
	q := Params{"session": sid, "notify_url": "http://app.test/n"}
	for k, v := range p {
		q[k] = v
	}
	r.mustDo("monitor", q)
	if n := r.next(); n.params.Get("ivr_block") != "monitor" || n.params.Get("call_state") != StateOngoing {
		r.t.Fatalf("monitor notification %v", n.params)
	}
	r.recs.mu.Lock()
	defer r.recs.mu.Unlock()
	return c, sid, r.recs.recs[len(r.recs.recs)-1]
}

// TestChannelsParameter: channels (ours) comes after each block's documented parameters and
// takes mono (default) or dual, in any case; it reaches the recording.
func TestChannelsParameter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		block  string
		params Params
		want   string
	}{
		{"monitor dual", "monitor", Params{"channels": "dual"}, StatusOK},
		{"monitor DUAL", "monitor", Params{"channels": "DUAL"}, StatusOK},
		{"monitor mono", "monitor", Params{"channels": "mono"}, StatusOK},
		{"monitor stereo", "monitor", Params{"channels": "stereo"}, StatusInvalidChannels},
		{"monitor 2", "monitor", Params{"channels": "2"}, StatusInvalidChannels},
		{"monitor: msg first", "monitor", Params{"channels": "x", "msg": strings.Repeat("a", 501)}, StatusMsgInvalidLength},
		{"monitor: tag first", "monitor", Params{"channels": "x", "tag": strings.Repeat("a", 257)}, StatusTagInvalidLength},
		{"monitor: notify_url first", "monitor", Params{"channels": "x", "notify_url": "ftp://x/"}, StatusInvalidNotifyURL},
		{"monitor: monitor_notify_url first", "monitor", Params{"channels": "x", "monitor_notify_url": "nope"}, StatusInvalidNotifyURL},
		{"record dual", "record", Params{"channels": "dual"}, StatusOK},
		{"record left", "record", Params{"channels": "left"}, StatusInvalidChannels},
		{"record: max_duration first", "record", Params{"channels": "x", "max_duration": "0"}, StatusInvalidMaxDur},
		{"record: tag first", "record", Params{"channels": "x", "tag": strings.Repeat("a", 257)}, StatusTagInvalidLength},
		{"record: notify_url first", "record", Params{"channels": "x", "notify_url": ""}, Missing("notify_url")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			_, sid := r.incoming()
			p := Params{"session": sid, "notify_url": "http://app.test/n"}
			for k, v := range tc.params {
				p[k] = v
			}
			if p["notify_url"] == "" {
				delete(p, "notify_url")
			}
			if st := r.do(tc.block, p); st != tc.want {
				t.Fatalf("%v: %s, want %s", p, st, tc.want)
			}
		})
	}
	// The recording is made with what was asked: dual is two channels, the default one.
	for _, tc := range []struct {
		block, channels string
		want            int
	}{{"monitor", "", 1}, {"monitor", "Dual", 2}, {"record", "", 1}, {"record", "dual", 2}} {
		r := newRig(t, Config{})
		_, sid := r.incoming()
		p := Params{"session": sid, "notify_url": "http://app.test/n", "channels": tc.channels}
		if tc.channels == "" {
			delete(p, "channels")
		}
		r.mustDo(tc.block, p)
		r.waitFor(sid, "recording", func(SessionRecord) bool {
			r.recs.mu.Lock()
			defer r.recs.mu.Unlock()
			return len(r.recs.recs) > 0
		})
		r.recs.mu.Lock()
		info := r.recs.recs[0].info
		r.recs.mu.Unlock()
		if info.Channels != tc.want || info.AppID != "A1" || info.SessionID != sid || info.Kind != tc.block {
			t.Errorf("%s channels=%q: recording %+v, want %d channels", tc.block, tc.channels, info, tc.want)
		}
	}
}

// TestRecordDualHearsBothDirections: a dual Record takes what the caller hears as well; a
// mono one only the caller.
func TestRecordDualHearsBothDirections(t *testing.T) {
	for _, dual := range []bool{false, true} {
		var ts tapSet
		rec := &fakeRecording{}
		ts.setRecord(rec, dual)
		ts.Inbound(make([]int16, 160), time.Now())
		ts.Outbound(make([]int16, 160), time.Now())
		if rec.in != 160 || (rec.out == 160) != dual {
			t.Errorf("dual=%v: in %d, out %d", dual, rec.in, rec.out)
		}
		ts.setRecord(nil, false)
		ts.Outbound(make([]int16, 160), time.Now())
		if rec.out > 160 {
			t.Errorf("dual=%v: heard after it stopped", dual)
		}
	}
}

// TestPauseParameters: the order of checks of monitor/pause and monitor/resume.
func TestPauseParameters(t *testing.T) {
	r := newRig(t, Config{})
	_, sid, _ := r.monitoring(nil)
	_, plain := r.incoming() // no Monitor
	ended, endedSID := r.incoming()
	ended.end()
	r.waitFor(endedSID, "ended", func(rec SessionRecord) bool { return rec.Phase == PhaseEnded })
	for _, tc := range []struct {
		name  string
		app   string
		p     Params
		want  string
		pause bool
	}{
		{"no session", "A1", Params{}, Missing("session"), true},
		{"unknown session", "A1", Params{"session": "Snope"}, StatusInvalidSession, true},
		{"another app's session", "A2", Params{"session": sid}, StatusSessionAccessDenied, true},
		{"ended session", "A1", Params{"session": endedSID}, StatusSessionEnded, true},
		{"ended session before a bad behaviour", "A1", Params{"session": endedSID, "pause_behavior": "x"}, StatusSessionEnded, true},
		{"bad behaviour", "A1", Params{"session": sid, "pause_behavior": "mute"}, StatusInvalidPauseBehavior, true},
		{"bad behaviour before no Monitor", "A1", Params{"session": plain, "pause_behavior": "mute"}, StatusInvalidPauseBehavior, true},
		{"no Monitor", "A1", Params{"session": plain}, StatusMonitorNotInProgress, true},
		{"resume: no Monitor", "A1", Params{"session": plain}, StatusMonitorNotInProgress, false},
		{"resume: bad behaviour", "A1", Params{"session": sid, "pause_behavior": "1"}, StatusInvalidPauseBehavior, false},
		{"resume: unknown session", "A1", Params{"session": "Snope"}, StatusInvalidSession, false},
		{"resume: not paused", "A1", Params{"session": sid}, StatusOK, false},
		{"pause, SKIP", "A1", Params{"session": sid, "pause_behavior": "SKIP"}, StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			do := r.e.ResumeMonitor
			if tc.pause {
				do = r.e.PauseMonitor
			}
			if got := do(tc.app, tc.p).Status; got != tc.want {
				t.Fatalf("%s: %s, want %s", tc.name, got, tc.want)
			}
		})
	}
}

// TestPauseAndResume: a pause reaches the recording at once, also while a block runs (it does
// not wait for one, like a forced Hangup); pausing again and resuming what is not paused are
// successes that change nothing; each change is journaled with a timeline entry, and a skip
// adds what it left out to the Monitor's Skipped.
func TestPauseAndResume(t *testing.T) {
	r := newRig(t, Config{})
	c, sid, rec := r.monitoring(Params{"channels": "dual"})
	r.mustDo("play", Params{"session": sid, "msg": "long", "notify_url": "http://app.test/p"}) // 3 s
	steps := []struct {
		pause    bool
		behavior string
		want     string // the recording's pause calls so far
	}{
		{true, "", "pause silence"},
		{true, "skip", "pause silence"}, // already paused: the first pause holds
		{false, "", "pause silence, resume"},
		{false, "", "pause silence, resume"},
		{true, "skip", "pause silence, resume, pause skip"},
	}
	for i, s := range steps {
		p := Params{"session": sid}
		if s.behavior != "" {
			p["pause_behavior"] = s.behavior
		}
		do := r.e.ResumeMonitor
		if s.pause {
			do = r.e.PauseMonitor
		}
		if st := do("A1", p).Status; st != StatusOK {
			t.Fatalf("step %d: %s", i, st)
		}
		if got := rec.paused(); got != s.want {
			t.Fatalf("step %d: recording got %q, want %q", i, got, s.want)
		}
	}
	j := r.j.record(t, sid)
	if j.Monitor == nil || j.Monitor.Pause == nil || j.Monitor.Pause.Behavior != PauseSkip || j.Monitor.Skipped != 0 {
		t.Fatalf("journaled Monitor %+v", j.Monitor)
	}
	if j.Current == nil || j.Current.Name != "play" {
		t.Fatalf("the Play was disturbed: %+v", j.Current)
	}
	time.Sleep(30 * time.Millisecond)
	if st := r.e.ResumeMonitor("A1", Params{"session": sid}).Status; st != StatusOK {
		t.Fatal(st)
	}
	j = r.j.record(t, sid)
	if j.Monitor.Pause != nil || j.Monitor.Skipped < 30*time.Millisecond || j.Monitor.Skipped > time.Second {
		t.Fatalf("after resuming a skip: %+v", j.Monitor)
	}
	r.j.mu.Lock()
	var events []string
	for _, e := range r.j.steps[sid] {
		if e.Event == evPause || e.Event == evResume {
			events = append(events, e.Event+" "+e.Params["pause_behavior"])
		}
	}
	r.j.mu.Unlock()
	if want := []string{"pause silence", "resume ", "pause skip", "resume "}; !slices.Equal(events, want) {
		t.Fatalf("timeline %q, want %q", events, want)
	}
	c.end()
	r.e.Wait()
	if st := r.e.PauseMonitor("A1", Params{"session": sid}).Status; st != StatusSessionEnded {
		t.Fatalf("pause after the end: %s", st)
	}
}

// TestMonitorEnd: after a crash, a call lasted at least as long as its recording and what
// pauses with skip left out of it.
func TestMonitorEnd(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		mon  MonitorRecord
		want time.Duration
	}{
		{"no pause", MonitorRecord{StartedAt: t0}, 10 * time.Second},
		{"skipped, resumed", MonitorRecord{StartedAt: t0, Skipped: 5 * time.Second}, 15 * time.Second},
		{"silent pause: in the file", MonitorRecord{StartedAt: t0, Pause: &MonitorPause{Since: t0.Add(4 * time.Second), Behavior: PauseSilence}}, 10 * time.Second},
		{"skipping when killed", MonitorRecord{StartedAt: t0, Skipped: time.Second, Pause: &MonitorPause{Since: t0.Add(30 * time.Second), Behavior: PauseSkip}}, 30 * time.Second},
	} {
		if got := monitorEnd(&tc.mon, 10*time.Second).Sub(t0); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRecoveryOfAPausedCall: a crash while paused with skip settles the session with a
// duration that counts the paused time (the call went on while the recording did not), and
// finds the Monitor's recording again as the Monitor's, with its start.
func TestRecoveryOfAPausedCall(t *testing.T) {
	r := newRig(t, Config{})
	_, sid, rec := r.monitoring(nil)
	if st := r.e.PauseMonitor("A1", Params{"session": sid, "pause_behavior": "skip"}).Status; st != StatusOK {
		t.Fatal(st)
	}
	journaled := r.j.record(t, sid)
	// Pretend the pause began 70 s into the call, after 20 s left out by an earlier pause:
	// the file holds 50 s.
	journaled.Monitor.Pause.Since = journaled.Monitor.StartedAt.Add(70 * time.Second)
	journaled.Monitor.Skipped = 20 * time.Second
	journaled.AnsweredAt = journaled.Monitor.StartedAt
	next := newRig(t, Config{})
	if err := next.j.SaveSession(journaled, nil); err != nil {
		t.Fatal(err)
	}
	var infos []RecordingInfo
	if err := next.e.Recover(fakeFiles{length: 50 * time.Second, infos: &infos}); err != nil {
		t.Fatal(err)
	}
	var final sent
	for _, n := range next.drain() {
		if n.params.Get("ivr_block") == "monitor" {
			final = n
		}
	}
	if final.params.Get("duration") != "2" || final.params.Get("monitor_url") != recordingURL(rec.id) {
		t.Fatalf("recovered Monitor notification %v; want duration 2 (minutes)", final.params)
	}
	if len(infos) != 1 || infos[0].ID != rec.id || infos[0].Kind != "monitor" || infos[0].AppID != "A1" ||
		infos[0].SessionID != sid || !infos[0].Start.Equal(journaled.Monitor.StartedAt) {
		t.Fatalf("recovered %+v", infos)
	}
}
