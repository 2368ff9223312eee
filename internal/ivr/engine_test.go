package ivr

import (
	"strings"
	"testing"
	"time"
)

func TestMonitorPlayHangupFlow(t *testing.T) {
	r := newRig(t, Config{})
	c, sid := r.incoming()
	if ans, _, _ := c.state(); ans {
		t.Fatal("answered before the first block")
	}
	if st := r.do("monitor", Params{"session": sid, "msg": "recorded", "tag": "t1", "notify_url": "http://app.test/n?x=1"}); st != StatusOK {
		t.Fatal(st)
	}
	// A second block while Monitor runs: not ready.
	if st := r.do("play", Params{"session": sid, "msg": "hi", "notify_url": "http://app.test/n"}); st != StatusSessionNotReady {
		t.Fatal(st)
	}
	m := r.next()
	if m.params.Get("ivr_block") != "monitor" || m.params.Get("call_state") != "ongoing" || m.params.Get("tag") != "t1" ||
		m.target != "http://app.test/n?x=1" || m.params.Get("from") != "+6511111111" || m.params.Get("to") != "+6561234567" {
		t.Fatalf("monitor notification: %v %s", m.params, m.target)
	}
	if ans, _, plays := c.state(); !ans || plays != 1 {
		t.Fatalf("answered=%v plays=%d", ans, plays)
	}
	if st := r.do("monitor", Params{"session": sid, "notify_url": "http://app.test/n"}); st != StatusMonitorInProgress {
		t.Fatal(st)
	}
	if st := r.do("play", Params{"session": sid, "msg": "hello", "notify_url": "http://app.test/n"}); st != StatusOK {
		t.Fatal(st)
	}
	if p := r.next(); p.params.Get("ivr_block") != "play" || p.params.Get("call_state") != "ongoing" {
		t.Fatalf("play notification: %v", p.params)
	}
	if st := r.do("hangup", Params{"session": sid, "msg": "bye", "notify_url": "http://app.test/h"}); st != StatusOK {
		t.Fatal(st)
	}
	if st := r.do("play", Params{"session": sid, "msg": "again"}); st != StatusSessionEnded {
		t.Fatal(st)
	}
	var hang, mon sent
	for i := 0; i < 2; i++ {
		s := r.next()
		switch s.target {
		case "http://app.test/h":
			hang = s
		default:
			mon = s
		}
	}
	if hang.params.Get("ivr_block") != "hangup" || hang.params.Get("call_state") != "ended" || hang.params.Get("date") == "" ||
		hang.params.Get("duration") != "1" || hang.params.Get("currency") == "" {
		t.Fatalf("hangup notification: %v", hang.params)
	}
	if mon.params.Get("ivr_block") != "monitor" || mon.params.Get("call_state") != "ended" ||
		!strings.Contains(mon.params.Get("monitor_url"), "/recordings/rec-") || mon.params.Get("tag") != "t1" || mon.target != "http://app.test/n?x=1" {
		t.Fatalf("monitor_url notification: %v %s", mon.params, mon.target)
	}
	r.quiet(200 * time.Millisecond)
	rec := r.recs.recs[0]
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.out != 1600 || rec.finished.IsZero() {
		t.Fatalf("recording got out=%d samples (want the Play and Hangup prompts: 1600), finished=%v", rec.out, rec.finished)
	}
	if _, _, plays := c.state(); plays != 3 {
		t.Fatalf("plays=%d", plays)
	}
	r.e.Wait()
	if j := r.j.record(t, sid); j.Phase != PhaseEnded || j.Line != LineDown || len(j.Owed) != 0 || j.Monitor == nil || !j.Monitor.Stored {
		t.Fatalf("journal: %+v", j)
	}
}

func TestMonitorNotifyURLSeparate(t *testing.T) {
	r := newRig(t, Config{})
	c, sid := r.incoming()
	if st := r.do("monitor", Params{"session": sid, "notify_url": "http://app.test/n", "monitor_notify_url": "http://app.test/m"}); st != StatusOK {
		t.Fatal(st)
	}
	r.next()
	c.end() // caller hangs up while idle
	m := r.next()
	if m.target != "http://app.test/m" || m.params.Get("monitor_url") == "" || m.params.Get("call_state") != "ended" {
		t.Fatalf("%s %v", m.target, m.params)
	}
	r.quiet(200 * time.Millisecond)
}

func TestCallerHangsUpMidPlay(t *testing.T) {
	r := newRig(t, Config{})
	c, sid := r.incoming()
	if st := r.do("monitor", Params{"session": sid, "notify_url": "http://app.test/n"}); st != StatusOK {
		t.Fatal(st)
	}
	r.next()
	if st := r.do("play", Params{"session": sid, "msg": "x", "notify_url": "http://app.test/p"}); st != StatusOK {
		t.Fatal(st)
	}
	c.end()
	got := map[string]sent{}
	for i := 0; i < 2; i++ {
		s := r.next()
		got[s.params.Get("ivr_block")] = s
	}
	if p := got["play"]; p.params.Get("call_state") != "ended" || p.params.Get("duration") == "" {
		t.Fatalf("play: %v", p.params)
	}
	if m := got["monitor"]; m.params.Get("monitor_url") == "" {
		t.Fatalf("monitor: %v", m.params)
	}
	if st := r.do("play", Params{"session": sid}); st != StatusSessionEnded {
		t.Fatal(st)
	}
}

func TestForcedHangupMidBlock(t *testing.T) {
	r := newRig(t, Config{})
	_, sid := r.incoming()
	if st := r.do("play", Params{"session": sid, "msg": "x", "notify_url": "http://app.test/p"}); st != StatusOK {
		t.Fatal(st)
	}
	if st := r.do("hangup", Params{"session": sid, "notify_url": "http://app.test/p"}); st != StatusSessionNotReady {
		t.Fatal(st)
	}
	if st := r.do("hangup", Params{"session": sid, "force": "enabled", "notify_url": "http://app.test/h"}); st != StatusOK {
		t.Fatal(st)
	}
	got := map[string]string{}
	for i := 0; i < 2; i++ {
		s := r.next()
		got[s.params.Get("ivr_block")] = s.params.Get("call_state")
	}
	if got["play"] != "ended" || got["hangup"] != "ended" {
		t.Fatal(got)
	}
}

func TestHangupWhileRingingRejects(t *testing.T) {
	r := newRig(t, Config{})
	c, sid := r.incoming()
	if st := r.do("hangup", Params{"session": sid, "notify_url": "http://app.test/h"}); st != StatusOK {
		t.Fatal(st)
	}
	if h := r.next(); h.params.Get("call_state") != "ended" || h.params.Get("duration") != "0" {
		t.Fatal(h.params)
	}
	if ans, rej, _ := c.state(); ans || rej != 603 {
		t.Fatalf("answered=%v rejected=%d", ans, rej)
	}
}

func TestPlayWithoutNotifyURLHangsUp(t *testing.T) {
	r := newRig(t, Config{})
	c, sid := r.incoming()
	if st := r.do("play", Params{"session": sid, "msg": "x"}); st != StatusOK {
		t.Fatal(st)
	}
	select {
	case <-c.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("call not hung up")
	}
	r.quiet(200 * time.Millisecond)
}

func TestIdleTimeoutHangsUp(t *testing.T) {
	r := newRig(t, Config{IdleTimeout: 150 * time.Millisecond})
	c, sid := r.incoming()
	if st := r.do("play", Params{"session": sid, "msg": "x", "notify_url": "http://app.test/p"}); st != StatusOK {
		t.Fatal(st)
	}
	if p := r.next(); p.params.Get("call_state") != "ongoing" {
		t.Fatal(p.params)
	}
	// No next block: hung up, and the app gets the last block's notification as ended.
	if p := r.next(); p.params.Get("ivr_block") != "play" || p.params.Get("call_state") != "ended" {
		t.Fatal(p.params)
	}
	if !isDone(c) {
		t.Fatal("not hung up")
	}
}

func TestIdleTimeoutWhileRingingRejects(t *testing.T) {
	r := newRig(t, Config{IdleTimeout: 100 * time.Millisecond})
	c, _ := r.incoming()
	if a := r.next(); a.params.Get("ivr_block") != "answer" || a.params.Get("call_state") != "ended" {
		t.Fatal(a.params)
	}
	if _, rej, _ := c.state(); rej != 480 {
		t.Fatal(rej)
	}
}

func TestMonitorEndsDuringMsg(t *testing.T) {
	r := newRig(t, Config{})
	c, sid := r.incoming()
	if st := r.do("monitor", Params{"session": sid, "msg": "long", "notify_url": "http://app.test/n"}); st != StatusOK {
		t.Fatal(st)
	}
	c.end()
	if m := r.next(); m.params.Get("ivr_block") != "monitor" || m.params.Get("call_state") != "ended" || m.params.Get("monitor_url") != "" {
		t.Fatal(m.params)
	}
	r.quiet(200 * time.Millisecond)
}
