package e2e

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

const callerNum3 = "6533333333"

// TestCallsEndedAfterSIGKILL: ivrd is SIGKILLed carrying four calls: a sipp caller over UDP,
// one over TCP, one that hangs up while ivrd is down, and a Dial to a sipp far end. The next
// start sends BYE to every one of them (the TCP caller's on a new connection to its Contact),
// and the caller whose BYE crossed the restart gets 200 for it, not 481.
func TestCallsEndedAfterSIGKILL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	peerCtx, stopPeers := context.WithCancel(ctx)
	defer stopPeers()
	trunk, far := startAnswerer(peerCtx, t, testpeer.Answerer{Mode: testpeer.ModeAnswer, Timeout: 60 * time.Second})
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "", "--sip-trunk", trunk)
	a.ivrd = "http://" + p.http
	target := strings.TrimPrefix(number, "+")
	tone := testpeer.SendAudio(audio.SineWave(1000, 20*time.Second, 8000))

	monitor := func(from string) time.Time { _, at := answerWithMonitor(t, a, from); return at }
	udp := peerCall(peerCtx, t, testpeer.Call{Target: p.sip, Number: target, From: callerNum, Script: []testpeer.Step{tone}, Timeout: 60 * time.Second})
	monitor(callerNum)
	tcp := peerCall(peerCtx, t, testpeer.Call{Target: p.sip, Number: target, From: callerNum2, Transport: "tcp", KeepOnClose: true,
		Script: []testpeer.Step{tone}, Timeout: 60 * time.Second})
	monitor(callerNum2)
	if st := a.call("start/dial", url.Values{"dest": {farNumber}, "notify_url": {a.url("/dial")}}); st != "success_ok" {
		t.Fatal("dial:", st)
	}
	expect(t, a.next(15*time.Second), "/dial", map[string]string{"dial_status": "answered", "call_state": "ongoing"})

	// The third caller hangs up 3 s after its answer: ivrd is killed 1 s after it records
	// and started again 4 s after, so the BYE goes out while it is down, and its
	// retransmissions (0.5, 1.5, 3.5, 7.5 s later) meet the new process.
	crossing := make(chan testpeer.Result, 1)
	go func() {
		xml := testpeer.NewDialog(target, callerNum3).Invite(nil, "application/sdp", testpeer.G711SDP(1)).Expect(200).Ack("").
			Pause(3 * time.Second).ByeCrossing().XML()
		res, err := testpeer.Raw{Target: p.sip, XML: xml, Timeout: 60 * time.Second}.Run(peerCtx)
		if err != nil && peerCtx.Err() == nil {
			t.Logf("crossing caller: %v\n%s", err, tail(res.Trace, 40))
		}
		crossing <- res
	}()
	tRec := monitor(callerNum3)
	time.Sleep(time.Until(tRec.Add(time.Second)))
	p.kill()
	time.Sleep(time.Until(tRec.Add(4 * time.Second)))
	p2 := startIvrd(t, data, p.http, p.sip, "--sip-trunk", trunk)

	// Every call: a BYE from the new process.
	for _, c := range []struct {
		name string
		ch   <-chan testpeer.Result
	}{{"UDP caller", udp}, {"TCP caller", tcp}} {
		select {
		case res := <-c.ch:
			if !res.Answered || !res.ByeFromServer {
				t.Errorf("%s: answered %v, BYE from ivrd %v\n%s", c.name, res.Answered, res.ByeFromServer, tail(res.Trace, 30))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: still in its call 30 s after the restart", c.name)
		}
	}
	if res := far(); !res.Answered || !res.ByeFromServer {
		t.Errorf("dialled far end: answered %v, BYE from ivrd %v\n%s", res.Answered, res.ByeFromServer, tail(res.Trace, 30))
	}
	res := <-crossing
	var byeAnswers []int
	for _, m := range testpeer.Messages(res.Trace) {
		if m.Received && m.Method == "BYE" && m.Status != 0 {
			byeAnswers = append(byeAnswers, m.Status)
		}
	}
	if len(byeAnswers) == 0 || byeAnswers[0] != 200 {
		t.Fatalf("the BYE that crossed the restart was answered %v, want 200\n%s", byeAnswers, tail(res.Trace, 60))
	}
	log := p2.logText()
	if n := strings.Count(log, "recovered call ended (BYE answered 200)"); n < 2 {
		t.Errorf("%d recovered calls confirmed their BYE, want at least 2 (the UDP caller and the far end)", n)
	}
	if !strings.Contains(log, "recovered call: request from the other end answered 200") {
		t.Error("no late BYE answered 200 in the log")
	}
	t.Logf("after SIGKILL: UDP caller, TCP caller (new connection) and dialled far end got BYE; the crossing BYE was answered %v", byeAnswers)
}

// answerWithMonitor answers the call from `from` with a Monitor and waits until it records; it
// returns the session and when the recording started.
func answerWithMonitor(t *testing.T, a *app, from string) (string, time.Time) {
	t.Helper()
	n := a.next(15 * time.Second)
	expect(t, n, "/answer", map[string]string{"ivr_block": "answer", "from": "+" + from, "session": "*"})
	sid := n.params.Get("session")
	if st := a.call("middle/monitor", url.Values{"session": {sid}, "notify_url": {a.url("/monitor")}}); st != "success_ok" {
		t.Fatal(st)
	}
	on := a.next(15 * time.Second)
	expect(t, on, "/monitor", map[string]string{"call_state": "ongoing", "session": sid})
	return sid, on.at
}
