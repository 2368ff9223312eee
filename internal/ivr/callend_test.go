package ivr

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
	"github.com/ivrd/ivrd/internal/metrics"
	"github.com/ivrd/ivrd/internal/metrics/metricstest"
	"github.com/ivrd/ivrd/internal/testlog"
)

// namedCall is a fakeCall that, like telephony's Leg, logs with its Call-ID and, once named,
// its session, and knows who ended it.
type namedCall struct {
	*fakeCall
	tag    calllog.Tag
	log    *slog.Logger
	remote func() bool // EndedByRemote
}

func (c *namedCall) NameSession(id string) *slog.Logger { c.tag.Set(id); return c.log }
func (c *namedCall) EndedByRemote() bool                { return c.remote() }

// metricsRig is a rig with metrics and a JSON log.
func metricsRig(t *testing.T) (*rig, *fakeTel, *metrics.Metrics, *testlog.Buffer) {
	r, tel := telRig(t)
	m := metrics.New()
	log, buf := testlog.NewJSON()
	r.e.log, r.e.d.Calls, r.e.d.Blocks = log, m.Calls, m.Blocks
	return r, tel, m, buf
}

// waitEnded waits for session sid's "call ended" line and returns it.
func waitEnded(t *testing.T, buf *testlog.Buffer, sid string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines, err := testlog.Lines(buf.String())
		if err != nil {
			t.Fatal(err)
		}
		var found []map[string]any
		for _, l := range lines {
			if l["msg"] == "call ended" && l[calllog.Key] == sid {
				found = append(found, l)
			}
		}
		if len(found) > 1 {
			t.Fatalf("%d call ended lines for %s: %v", len(found), sid, found)
		}
		if len(found) == 1 {
			return found[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call ended line for %s in\n%s", sid, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// One "call ended" line per call, and the calls and blocks counted, whoever ended the call
// and however.
func TestCallEnded(t *testing.T) {
	type want struct {
		cause, who string
		blocks     float64
		recording  bool
		dir        string
		outcome    string
		blocksRun  map[string]string // block → status counted once
	}
	cases := []struct {
		name string
		run  func(t *testing.T, r *rig, tel *fakeTel) string // drives a call, returns its session
		want want
	}{
		{"monitor play hangup", func(t *testing.T, r *rig, _ *fakeTel) string {
			_, sid := r.incoming()
			r.do("monitor", Params{"session": sid, "notify_url": "http://app.test/n"})
			r.next()
			r.do("play", Params{"session": sid, "msg": "hi", "notify_url": "http://app.test/n"})
			r.next()
			r.do("hangup", Params{"session": sid, "notify_url": "http://app.test/h"})
			return sid
		}, want{"hangup", ByIvrd, 3, true, metrics.Inbound, metrics.IvrdHangup,
			map[string]string{"monitor": BlockCompleted, "play": BlockCompleted, "hangup": BlockCompleted}}},
		{"caller hangs up mid-play", func(t *testing.T, r *rig, _ *fakeTel) string {
			c, sid := r.incoming()
			r.do("play", Params{"session": sid, "msg": "long", "notify_url": "http://app.test/n"})
			time.Sleep(100 * time.Millisecond)
			c.end()
			return sid
		}, want{"far end hung up", ByCaller, 1, false, metrics.Inbound, metrics.CallerHangup,
			map[string]string{"play": BlockInterrupted}}},
		{"caller gives up ringing", func(t *testing.T, r *rig, _ *fakeTel) string {
			c, sid := r.incoming()
			c.end()
			return sid
		}, want{"far end hung up", ByCaller, 0, false, metrics.Inbound, metrics.Unanswered, nil}},
		{"forced hangup mid-play", func(t *testing.T, r *rig, _ *fakeTel) string {
			_, sid := r.incoming()
			r.do("play", Params{"session": sid, "msg": "long", "notify_url": "http://app.test/n"})
			time.Sleep(100 * time.Millisecond)
			r.do("hangup", Params{"session": sid, "force": "enabled"})
			return sid
		}, want{"hangup", ByIvrd, 2, false, metrics.Inbound, metrics.IvrdHangup,
			map[string]string{"play": BlockInterrupted, "hangup": BlockCompleted}}},
		{"far end of a transfer hangs up", func(t *testing.T, r *rig, tel *fakeTel) string {
			_, sid := r.incoming()
			r.do("transfer", Params{"session": sid, "dest": "+6590000001", "notify_url": "http://app.test/t"})
			waitFor(t, func() bool { tel.mu.Lock(); defer tel.mu.Unlock(); return len(tel.dialed) == 1 })
			tel.mu.Lock()
			far := tel.dialed[0]
			tel.mu.Unlock()
			far.end()
			return sid
		}, want{"hangup", ByFarEnd, 1, false, metrics.Inbound, metrics.FarEndHangup,
			map[string]string{"transfer": BlockCompleted}}},
		{"transfer busy, hung up", func(t *testing.T, r *rig, _ *fakeTel) string {
			_, sid := r.incoming()
			r.do("transfer", Params{"session": sid, "dest": "+6590000002", "notify_url": "http://app.test/t"})
			return sid
		}, want{"hangup", ByIvrd, 1, false, metrics.Inbound, metrics.IvrdHangup,
			map[string]string{"transfer": BlockFailed}}},
		{"dial busy", func(t *testing.T, r *rig, _ *fakeTel) string {
			return r.e.Handle(context.Background(), "A1", "dial", Params{"dest": "+6590000002", "notify_url": "http://app.test/d"}).Fields["session"]
		}, want{"dial busy", ByCallee, 1, false, metrics.Outbound, metrics.Unanswered,
			map[string]string{"dial": BlockFailed}}},
		{"dialled party hangs up", func(t *testing.T, r *rig, tel *fakeTel) string {
			sid := r.e.Handle(context.Background(), "A1", "dial", Params{"dest": "+6590000001", "notify_url": "http://app.test/d"}).Fields["session"]
			r.next()
			tel.mu.Lock()
			c := tel.dialed[0]
			tel.mu.Unlock()
			c.end()
			return sid
		}, want{"far end hung up", ByCallee, 1, false, metrics.Outbound, metrics.CalleeHangup,
			map[string]string{"dial": BlockCompleted}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, tel, m, buf := metricsRig(t)
			sid := c.run(t, r, tel)
			line := waitEnded(t, buf, sid)
			r.e.Wait()
			w := c.want
			if line["cause"] != w.cause || line["hung_up_by"] != w.who || line["blocks"] != w.blocks || line["dir"] != w.dir ||
				(line["recording"] != "") != w.recording || line["duration_ms"] == nil || line["talk_ms"] == nil {
				t.Errorf("call ended line: %v\nwant %+v", line, w)
			}
			if w.dir == metrics.Inbound && (line["from"] != "+6511111111" || line["to"] != "+6561234567") {
				t.Errorf("from, to: %v, %v", line["from"], line["to"])
			}
			v := metricstest.Gather(t, m.Gatherer())
			if got := v.Get("ivrd_calls_total", "direction", w.dir, "outcome", w.outcome); got != 1 {
				t.Errorf("calls_total{%s,%s} = %v, want 1", w.dir, w.outcome, got)
			}
			if got := v.Sum("ivrd_calls_total"); got != 1 {
				t.Errorf("calls counted %v times", got)
			}
			if got := v.Get("ivrd_calls_active", "direction", w.dir); got != 0 {
				t.Errorf("calls_active = %v after the end", got)
			}
			for block, status := range w.blocksRun {
				if got := v.Get("ivrd_blocks_total", "block", block, "status", status); got != 1 {
					t.Errorf("blocks_total{%s,%s} = %v, want 1", block, status, got)
				}
			}
			if got := v.Sum("ivrd_blocks_total"); got != float64(len(w.blocksRun)) {
				t.Errorf("%v blocks counted, want %d", got, len(w.blocksRun))
			}
			if w.dir == metrics.Outbound || c.name == "far end of a transfer hangs up" {
				tel.mu.Lock()
				s := tel.sessions
				tel.mu.Unlock()
				if len(s) == 0 || s[0] != sid {
					t.Errorf("Dial's context named sessions %v, want %s", s, sid)
				}
			}
		})
	}
}

// A call that can say who ended it is believed: hung up without a block (ivrd's shutdown),
// it is ivrd's; and a call named by its session logs the session's lines with its own ids.
func TestCallEndedNamedCall(t *testing.T) {
	for _, byRemote := range []bool{false, true} {
		r, _, m, buf := metricsRig(t)
		fc := newFakeCall()
		c := &namedCall{fakeCall: fc, remote: func() bool { return byRemote }}
		c.log = c.tag.Logger(r.e.log.With("call_id", "cid-1"))
		sid, err := r.e.Incoming(c, "A1", "http://app.test/answer", "+6511111111", "+6561234567")
		if err != nil {
			t.Fatal(err)
		}
		r.next()
		if c.tag.Session() != sid {
			t.Fatalf("call named %q, session %s", c.tag.Session(), sid)
		}
		r.do("play", Params{"session": sid, "msg": "hi", "notify_url": "http://app.test/n"})
		r.next()
		fc.end() // the leg ends without a block asking: a shutdown, or the caller
		line := waitEnded(t, buf, sid)
		want, cause, outcome := ByIvrd, CauseIvrdHungUp, metrics.IvrdHangup
		if byRemote {
			want, cause, outcome = ByCaller, "far end hung up", metrics.CallerHangup
		}
		if line["hung_up_by"] != want || line["cause"] != cause || line["call_id"] != "cid-1" {
			t.Errorf("remote %v: call ended line %v", byRemote, line)
		}
		if got := metricstest.Gather(t, m.Gatherer()).Get("ivrd_calls_total", "direction", metrics.Inbound, "outcome", outcome); got != 1 {
			t.Errorf("remote %v: calls_total{%s} = %v", byRemote, outcome, got)
		}
		r.e.Wait()
	}
}

// A call refused for the app's call limit leaves its call unnamed.
func TestCallLimitUnnames(t *testing.T) {
	r := newRig(t, Config{MaxCallsPerApp: 1})
	r.incoming()
	c := &namedCall{fakeCall: newFakeCall()}
	c.log = c.tag.Logger(slog.New(slog.DiscardHandler))
	if _, err := r.e.Incoming(c, "A1", "http://app.test/answer", "+6511111111", "+6561234567"); err != ErrCallLimit {
		t.Fatal(err)
	}
	if s := c.tag.Session(); s != "" {
		t.Fatalf("refused call still named %q", s)
	}
}

// A call a crashed process carried is logged and counted (as crash) when the next start
// settles it; one whose end was logged before the crash is not logged again.
func TestCallEndedAfterCrash(t *testing.T) {
	r, _, _, _ := metricsRig(t)
	c, sid := r.incoming()
	r.do("monitor", Params{"session": sid, "notify_url": "http://app.test/n"})
	r.next()
	_ = c // the process dies here: nothing more happens to the call

	r2, _, m2, buf2 := metricsRig(t)
	r2.j, r2.e.d.Journal = r.j, r.j
	r2.n.journal = r.j
	if err := r2.e.Recover(fakeFiles{length: time.Second}); err != nil {
		t.Fatal(err)
	}
	line := waitEnded(t, buf2, sid)
	if line["cause"] != "crash" || line["hung_up_by"] != ByIvrd || line["recording"] == "" {
		t.Errorf("call ended line after the crash: %v", line)
	}
	if got := metricstest.Gather(t, m2.Gatherer()).Get("ivrd_calls_total", "direction", metrics.Inbound, "outcome", metrics.Crashed); got != 1 {
		t.Errorf("calls_total{crash} = %v", got)
	}
	if got := metricstest.Gather(t, m2.Gatherer()).Get("ivrd_calls_active", "direction", metrics.Inbound); got != 0 {
		t.Errorf("calls_active = %v", got)
	}
	c.end()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
