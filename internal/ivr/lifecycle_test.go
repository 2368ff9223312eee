package ivr

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// summary is "block:call_state" for each notification, in order.
func summary(ns []sent) string {
	var parts []string
	for _, n := range ns {
		s := n.params.Get("ivr_block") + ":" + n.params.Get("call_state")
		if n.params.Get("monitor_url") != "" {
			s += "+url"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// sorted sorts a summary's words.
func sorted(s string) string {
	f := strings.Fields(s)
	slices.Sort(f)
	return strings.Join(f, " ")
}

// drain waits for the engine to finish everything it runs and returns the notifications sent.
func (r *rig) drain() []sent {
	r.e.Wait()
	var got []sent
	for {
		select {
		case s := <-r.n.ch:
			got = append(got, s)
		default:
			return got
		}
	}
}

// waitFor polls the session until cond holds.
func (r *rig) waitFor(sid string, what string, cond func(SessionRecord) bool) {
	r.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if rec, ok := r.e.Session(sid); ok && cond(rec) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	rec, _ := r.e.Session(sid)
	r.t.Fatalf("session never %s: %+v", what, rec)
}

// noOngoingAfterEnd fails if a notification says ongoing after one said ended.
func noOngoingAfterEnd(t *testing.T, ns []sent) {
	t.Helper()
	ended := false
	for _, n := range ns {
		st := n.params.Get("call_state")
		if ended && st != StateEnded {
			t.Fatalf("%s after the end: %s", st, summary(ns))
		}
		ended = ended || st == StateEnded
	}
}

const forceRuns = 100

// TestForcedHangupAtEveryPoint: a forced Hangup ends the call at every point of its life (a
// BYE once an answer is under way or done, 603 before, CANCEL for a Dial still ringing), every
// time, and the app is told: the Hangup's notification and the overtaken block's, ended.
func TestForcedHangupAtEveryPoint(t *testing.T) {
	type point struct {
		name  string
		setup func(r *rig, c *fakeCall, sid string) // brings the session to the point
		after func(r *rig, c *fakeCall)             // runs once the Hangup is accepted
		how   string                                // how the call must end ("" any of bye / reject 603)
		want  string                                // the notifications after the Hangup
	}
	points := []point{
		{"ringing", func(r *rig, c *fakeCall, sid string) {}, nil, "reject 603", "hangup:ended"},
		{"answering (200 OK sent, no ACK yet)", func(r *rig, c *fakeCall, sid string) {
			c.gate = make(chan struct{})
			r.mustDo("monitor", Params{"session": sid, "notify_url": "http://app.test/n"})
			r.waitFor(sid, "answering", func(SessionRecord) bool { // the 200 OK is out
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.st == fcAnswering
			})
		}, func(r *rig, c *fakeCall) {
			time.AfterFunc(time.Duration(rand.IntN(30))*time.Millisecond, func() { close(c.gate) }) // the ACK comes
		}, "bye", "hangup:ended monitor:ended"},
		{"Monitor then Hangup back to back", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("monitor", Params{"session": sid, "notify_url": "http://app.test/n"})
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		}, nil, "", ""},
		{"mid-prompt", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("play", Params{"session": sid, "msg": "long", "notify_url": "http://app.test/p"})
			r.waitFor(sid, "answered", func(rec SessionRecord) bool { return rec.Line == LineUp })
			time.Sleep(20 * time.Millisecond)
		}, nil, "bye", "hangup:ended play:ended"},
		{"mid-recording start", func(r *rig, c *fakeCall, sid string) {
			r.recs.gate = make(chan struct{})
			r.mustDo("monitor", Params{"session": sid, "notify_url": "http://app.test/n"})
			r.waitFor(sid, "answered", func(rec SessionRecord) bool { return rec.Line == LineUp })
		}, func(r *rig, c *fakeCall) {
			time.AfterFunc(time.Duration(rand.IntN(10))*time.Millisecond, func() { close(r.recs.gate) })
		}, "bye", "hangup:ended monitor:ended"},
		{"during Hold", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("hold", Params{"session": sid, "msg": "long"})
			r.waitFor(sid, "answered", func(rec SessionRecord) bool { return rec.Line == LineUp })
		}, nil, "bye", "hangup:ended"},
		{"during Gather", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("gather", Params{"session": sid, "notify_url": "http://app.test/g"})
			r.waitFor(sid, "answered", func(rec SessionRecord) bool { return rec.Line == LineUp })
		}, nil, "bye", "gather:ended hangup:ended"},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			for i := 0; i < forceRuns; i++ {
				r := newRig(t, Config{})
				c, sid := r.incoming()
				p.setup(r, c, sid)
				if st := r.do("hangup", Params{"session": sid, "force": "enabled", "notify_url": "http://app.test/h"}); st != StatusOK {
					t.Fatalf("run %d: forced hangup: %s", i, st)
				}
				if p.after != nil {
					p.after(r, c)
				}
				select {
				case <-c.Done():
				case <-time.After(2 * time.Second):
					t.Fatalf("run %d: the call did not end", i)
				}
				got := r.drain()
				how := c.how()
				if (p.how != "" && how != p.how) || (p.how == "" && how != "bye" && how != "reject 603") {
					t.Fatalf("run %d: the call ended by %q, want %q", i, how, p.how)
				}
				noOngoingAfterEnd(t, got)
				s := sorted(summary(got)) // the overtaken block and the Hangup notify as the call ends, in either order
				if p.want != "" && s != p.want {
					t.Fatalf("run %d: notifications %q, want %q", i, s, p.want)
				}
				if !strings.Contains(s, "hangup:ended") {
					t.Fatalf("run %d: no hangup notification: %q", i, s)
				}
				if rec := r.j.record(t, sid); rec.Phase != PhaseEnded || len(rec.Owed) != 0 {
					t.Fatalf("run %d: journal %+v", i, rec)
				}
			}
		})
	}
	t.Run("during a Dial still ringing", func(t *testing.T) {
		for i := 0; i < forceRuns; i++ {
			r, tel := telRig(t)
			res := r.e.Handle(context.Background(), "A1", "dial", Params{"dest": ringForever, "notify_url": "http://app.test/d"})
			if res.Status != StatusOK {
				t.Fatal(res)
			}
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			if st := r.do("hangup", Params{"session": res.Fields["session"], "force": "enabled", "notify_url": "http://app.test/h"}); st != StatusOK {
				t.Fatalf("run %d: %s", i, st)
			}
			got := r.drain()
			noOngoingAfterEnd(t, got)
			if s := sorted(summary(got)); s != "dial:ended hangup:ended" {
				t.Fatalf("run %d: %q", i, s)
			}
			tel.mu.Lock()
			cancelled := tel.cancelled
			tel.mu.Unlock()
			if cancelled != 1 {
				t.Fatalf("run %d: the dial was not given up", i)
			}
		}
	})
}

func (r *rig) mustDo(block string, p Params) {
	r.t.Helper()
	if st := r.do(block, p); st != StatusOK {
		r.t.Fatalf("%s: %s", block, st)
	}
}

// TestRefusedCallTellsTheTruth (issue 10 item 8): when the call cannot be answered (the offer
// refused: 488) or drops during set-up, the pending block's notification says ended, the
// Monitor gets its ended notification without monitor_url, and nothing says ongoing.
func TestRefusedCallTellsTheTruth(t *testing.T) {
	cases := []struct {
		name   string
		call   func(c *fakeCall)
		block  string
		params Params
		during func(c *fakeCall) // while the answer is under way
		want   string
		cause  string
	}{
		{"codec refused under Monitor", func(c *fakeCall) { c.refuse = 30 * time.Millisecond }, "monitor",
			Params{"msg": "recorded", "notify_url": "http://app.test/n", "monitor_notify_url": "http://app.test/m"}, nil, "monitor:ended", "answer failed"},
		{"codec refused under Play", func(c *fakeCall) { c.refuse = 30 * time.Millisecond }, "play",
			Params{"msg": "hi", "notify_url": "http://app.test/p"}, nil, "play:ended", "answer failed"},
		{"dropped during set-up", func(c *fakeCall) { c.gate = make(chan struct{}) }, "monitor",
			Params{"notify_url": "http://app.test/n"}, func(c *fakeCall) { c.end() }, "monitor:ended", ""}, // hung up, or answer failed: whichever is seen first
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			c := newFakeCall()
			tc.call(c)
			sid, err := r.e.Incoming(c, "A1", "http://app.test/answer", "+6511111111", "+6561234567")
			if err != nil {
				t.Fatal(err)
			}
			r.next() // Answer
			p := Params{"session": sid}
			for k, v := range tc.params {
				p[k] = v
			}
			r.mustDo(tc.block, p)
			if tc.during != nil {
				r.waitFor(sid, "answering", func(rec SessionRecord) bool { return rec.Line == LineAnswering })
				tc.during(c)
			}
			got := r.drain()
			if s := summary(got); s != tc.want {
				t.Fatalf("notifications %q, want %q", s, tc.want)
			}
			if got[0].params.Get("duration") != "0" || got[0].params.Get("date") == "" || got[0].target != tc.params["notify_url"] {
				t.Fatalf("%s %v", got[0].target, got[0].params)
			}
			if st := r.do("play", Params{"session": sid, "notify_url": "http://app.test/p"}); st != StatusSessionEnded {
				t.Fatal("after the refusal:", st)
			}
			r.e.Wait()
			if rec := r.j.record(t, sid); rec.Phase != PhaseEnded || !strings.HasPrefix(rec.Cause, tc.cause) {
				t.Fatalf("journal: phase %s, cause %q", rec.Phase, rec.Cause)
			}
		})
	}
}

// TestRecoveryMatchesLive: a session journaled at each point of its life and then "crashed"
// (its engine dropped) is settled by recovery into exactly the notifications the live path
// sends when the call ends at that point: same delivery ids, targets and fields.
func TestRecoveryMatchesLive(t *testing.T) {
	type scenario struct {
		name  string
		reach func(r *rig, c *fakeCall, sid string)
	}
	answered := func(r *rig, sid string) {
		r.waitFor(sid, "answered", func(rec SessionRecord) bool { return rec.Line == LineUp })
	}
	monitor := func(r *rig, c *fakeCall, sid string) {
		r.mustDo("monitor", Params{"session": sid, "tag": "m1", "notify_url": "http://app.test/n", "monitor_notify_url": "http://app.test/m"})
		r.next()
	}
	scenarios := []scenario{
		{"ringing", func(r *rig, c *fakeCall, sid string) {}},
		{"mid-prompt", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("play", Params{"session": sid, "msg": "long", "tag": "p1", "notify_url": "http://app.test/p"})
			answered(r, sid)
		}},
		{"during Gather", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("gather", Params{"session": sid, "notify_url": "http://app.test/g"})
			answered(r, sid)
		}},
		{"mid-Record", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("record", Params{"session": sid, "notify_url": "http://app.test/r"})
			r.waitFor(sid, "recording", func(rec SessionRecord) bool {
				return len(rec.Owed) > 0 && rec.Owed[len(rec.Owed)-1].Recording != ""
			})
		}},
		{"idle after Play", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("play", Params{"session": sid, "msg": "hi", "notify_url": "http://app.test/p"})
			r.next()
		}},
		{"held", func(r *rig, c *fakeCall, sid string) {
			r.mustDo("play", Params{"session": sid, "notify_url": "http://app.test/p"})
			r.next()
			r.mustDo("hold", Params{"session": sid})
		}},
		{"idle, monitored", monitor},
		{"mid-prompt, monitored", func(r *rig, c *fakeCall, sid string) {
			monitor(r, c, sid)
			r.mustDo("play", Params{"session": sid, "msg": "long", "notify_url": "http://app.test/p"})
		}},
		{"held, monitored", func(r *rig, c *fakeCall, sid string) {
			monitor(r, c, sid)
			r.mustDo("hold", Params{"session": sid})
		}},
		{"monitored, paused with skip", func(r *rig, c *fakeCall, sid string) {
			monitor(r, c, sid)
			if st := r.e.PauseMonitor("A1", Params{"session": sid, "pause_behavior": "skip"}).Status; st != StatusOK {
				r.t.Fatal(st)
			}
		}},
		{"monitored, paused and resumed", func(r *rig, c *fakeCall, sid string) {
			monitor(r, c, sid)
			r.e.PauseMonitor("A1", Params{"session": sid})
			if st := r.e.ResumeMonitor("A1", Params{"session": sid}).Status; st != StatusOK {
				r.t.Fatal(st)
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			live := newRig(t, Config{})
			c, sid := live.incoming()
			sc.reach(live, c, sid)
			live.quiet(50 * time.Millisecond)
			// The crash: what the journal and the outbox hold now survives.
			live.j.mu.Lock()
			journaled := slices.Clone(live.j.last[sid])
			live.j.mu.Unlock()
			live.n.mu.Lock()
			seen := map[string]bool{}
			for k := range live.n.seen {
				seen[k] = true
			}
			live.n.mu.Unlock()

			c.end() // the live path: the call ends here
			want := live.drain()

			rec := newRig(t, Config{})
			rec.j.last = map[string][]byte{sid: journaled}
			rec.n.seen = seen
			if err := rec.e.Recover(fakeFiles{length: time.Second}); err != nil {
				t.Fatal(err)
			}
			got := rec.drain()
			if len(want) == 0 || fmt.Sprint(render(got)) != fmt.Sprint(render(want)) {
				t.Fatalf("recovery sent\n  %v\nthe live end sent\n  %v", render(got), render(want))
			}
			t.Logf("%s: %s", sc.name, summary(want))
			if j := rec.j.record(t, sid); j.Phase != PhaseEnded || len(j.Owed) != 0 {
				t.Fatalf("recovered journal: %+v", j)
			}
			if err := rec.e.Recover(fakeFiles{}); err != nil { // a second start owes nothing more
				t.Fatal(err)
			}
			rec.quiet(50 * time.Millisecond)
		})
	}
}

// render describes notifications exactly, for comparison.
func render(ns []sent) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.delivery + " " + n.target + " " + n.params.Encode()
	}
	return out
}

// TestTimeline: the journal holds each session's steps: blocks with their parameters (never
// the access token) and results, owed and queued notifications by delivery id, the answer and
// the end with its cause.
func TestTimeline(t *testing.T) {
	r := newRig(t, Config{})
	c, sid := r.incoming()
	r.mustDo("play", Params{"session": sid, "msg": "hi", "tag": "t1", "notify_url": "http://app.test/p", "access_token": "secret"})
	r.next()
	r.mustDo("gather", Params{"session": sid, "notify_url": "http://app.test/g", "timeout": "1"})
	time.Sleep(20 * time.Millisecond)
	c.press("42#")
	r.next()
	c.end()
	r.next()
	r.e.Wait()
	r.j.mu.Lock()
	steps := slices.Clone(r.j.steps[sid])
	r.j.mu.Unlock()
	var lines []string
	owed := map[string]int{} // delivery → step
	for i, e := range steps {
		if e.Step != i+1 {
			t.Fatalf("step %d numbered %d", i+1, e.Step)
		}
		if e.Params["access_token"] != "" {
			t.Fatal("the access token is in the timeline")
		}
		l := e.Event
		switch e.Event {
		case evAccept:
			l += " " + e.Block + " tag=" + e.Params["tag"]
		case evDone:
			l += " " + e.Block + " " + e.CallState + " digits=" + e.Result["digits"]
		case stepOwe:
			l += " " + strings.TrimPrefix(e.Delivery, sid)
			owed[e.Delivery] = e.Step
		case evQueued: // noted when the outbox took it, which may be after the app's next request
			if at, ok := owed[e.Delivery]; !ok || at > e.Step {
				t.Fatalf("%s queued before it was owed", e.Delivery)
			}
			delete(owed, e.Delivery)
			continue
		case evDown:
			l += " " + e.Cause
		}
		lines = append(lines, l)
	}
	if len(owed) != 0 {
		t.Fatalf("owed, never queued: %v", owed)
	}
	got := strings.Join(lines, "\n")
	want := strings.Join([]string{"incoming", "owe -1", "accept play tag=t1", "answering", "answered",
		"done play ongoing digits=", "owe -2", "accept gather tag=", "done gather ongoing digits=42", "owe -3",
		"down far end hung up", "settle", "owe -4", "close"}, "\n")
	if got != want {
		t.Fatalf("timeline:\n%s\nwant:\n%s", got, want)
	}
}

// TestJournalFailureHoldsNotifications: while the journal cannot be written, notifications
// that became owed wait (they are never queued ahead of the record owing them), and go out
// once it can.
func TestJournalFailureHoldsNotifications(t *testing.T) {
	r := newRig(t, Config{})
	_, sid := r.incoming()
	r.j.mu.Lock()
	r.j.fail = fmt.Errorf("disk full")
	r.j.mu.Unlock()
	r.mustDo("play", Params{"session": sid, "notify_url": "http://app.test/p"})
	r.quiet(300 * time.Millisecond)
	r.j.mu.Lock()
	r.j.fail = nil
	r.j.mu.Unlock()
	if n := r.next(); n.params.Get("ivr_block") != "play" || n.params.Get("call_state") != "ongoing" {
		t.Fatal(n.params)
	}
}

// dialogCall is a fakeCall that describes its SIP dialog.
type dialogCall struct {
	*fakeCall
	snap []byte
}

func (d dialogCall) Dialog() []byte { return d.snap }

// enders records the dialogs recovery asks to end.
type enders struct{ got [][]byte }

func (e *enders) EndDialog(s []byte) error { e.got = append(e.got, s); return nil }

// TestDialogSnapshotForRecovery: a Call that describes its dialog has it journaled; after a
// crash, recovery hands it to Deps.Dialogs to end the call, before settling the session.
func TestDialogSnapshotForRecovery(t *testing.T) {
	live := newRig(t, Config{})
	c := dialogCall{newFakeCall(), []byte(`{"call_id":"abc@host","local_tag":"x"}`)}
	sid, err := live.e.Incoming(c, "A1", "http://app.test/answer", "+6511111111", "+6561234567")
	if err != nil {
		t.Fatal(err)
	}
	live.next()
	live.mustDo("play", Params{"session": sid, "notify_url": "http://app.test/p"})
	live.next()
	if j := live.j.record(t, sid); string(j.Dialog) != string(c.snap) {
		t.Fatalf("journaled dialog %q", j.Dialog)
	}
	rec := newRig(t, Config{})
	rec.j.last = map[string][]byte{sid: live.j.last[sid]}
	d := &enders{}
	rec.e.d.Dialogs = d
	if err := rec.e.Recover(fakeFiles{}); err != nil {
		t.Fatal(err)
	}
	if len(d.got) != 1 || string(d.got[0]) != string(c.snap) {
		t.Fatalf("dialogs ended: %q", d.got)
	}
	c.end()
}

// TestRecoverLegacyRecords: session records journaled before phases existed are settled as
// the recovery of that time did.
func TestRecoverLegacyRecords(t *testing.T) {
	cases := []struct{ name, data, want string }{
		{"ringing", `{"id":"S1","app_id":"A1","txn_ref":"T","state":"ringing","started_at":"2026-01-02T03:04:05Z",
			"last":{"block":"answer","target":"http://app.test/a"}}`, "answer:ended"},
		{"mid-Play, monitored", `{"id":"S1","app_id":"A1","txn_ref":"T","state":"ongoing","started_at":"2026-01-02T03:04:05Z",
			"answered_at":"2026-01-02T03:04:06Z","last":{"block":"monitor","target":"http://app.test/n"},
			"pending":{"block":"play","target":"http://app.test/p"},
			"monitor":{"recording_id":"rec-1","target":"http://app.test/m","started_at":"2026-01-02T03:04:07Z"}}`, "play:ended monitor:ended+url"},
		{"held", `{"id":"S1","app_id":"A1","txn_ref":"T","state":"ongoing","started_at":"2026-01-02T03:04:05Z",
			"last":{"block":"play","target":"http://app.test/p"},"pending":{"block":"hold"}}`, "play:ended"},
		{"ended, monitor still owed", `{"id":"S1","app_id":"A1","txn_ref":"T","state":"ended","started_at":"2026-01-02T03:04:05Z",
			"ended_at":"2026-01-02T03:05:05Z","last":{"block":"hangup","target":"http://app.test/h"},
			"monitor":{"recording_id":"rec-1","target":"http://app.test/m","started_at":"2026-01-02T03:04:07Z"}}`, "monitor:ended+url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, Config{})
			r.n.journal = nil // these records were never journaled as owing anything
			r.j.last = map[string][]byte{"S1": []byte(c.data)}
			if err := r.e.Recover(fakeFiles{length: time.Second}); err != nil {
				t.Fatal(err)
			}
			got := r.drain()
			if s := summary(got); s != c.want {
				t.Fatalf("%q, want %q", s, c.want)
			}
			if j := r.j.record(t, "S1"); j.Phase != PhaseEnded {
				t.Fatalf("%+v", j)
			}
		})
	}
}
