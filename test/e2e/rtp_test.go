package e2e

import (
	"context"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestRTPNeverStops: from the answer to the hang-up ivrd sends the caller 50 packets a second,
// also while nothing plays: a Gather waiting for keys, a Record, a Monitor listening. The
// caller measures arrivals with kernel timestamps.
func TestRTPNeverStops(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resc := r.callIn(ctx, callerNum, nil, 0)
	sid := r.answered(callerNum)

	r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "msg": {"Code?"}, "timeout": {"3"}, "notify_url": {r.a.url("/gather")}})
	expect(t, r.a.next(15*time.Second), "/gather", map[string]string{"ivr_block": "gather", "digits": ""})
	r.do("middle/record", "success_ok", url.Values{"session": {sid}, "max_duration": {"2"}, "notify_url": {r.a.url("/record")}})
	expect(t, r.a.next(15*time.Second), "/record", map[string]string{"ivr_block": "record", "call_state": "ongoing"})
	r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}})
	expect(t, r.a.next(15*time.Second), "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ongoing"})
	time.Sleep(3 * time.Second) // the monitored call's listening part
	tHang := time.Now()
	r.do("end/hangup", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/hangup")}})
	r.a.nextTwo(15 * time.Second)
	res := <-resc
	if !res.Answered || len(res.Arrivals) == 0 {
		t.Fatalf("sipp: answered %v, %d packets", res.Answered, len(res.Arrivals))
	}
	perSecond := res.PerSecond(res.Arrivals[0], tHang)
	for i, n := range perSecond {
		if n < 49 {
			t.Errorf("second %d after the answer: %d packets from ivrd, want 49 or more (all: %v)", i, n, perSecond)
		}
	}
	t.Logf("packets from ivrd in each second from the answer to the hang-up: %v", perSecond)
}

// TestInjectedRTPNotRecorded: a stranger's RTP sent to a monitored call's port (from another
// port and SSRC) is in neither the recording nor what the caller hears, and the caller's own
// audio is recorded as usual all the while.
func TestInjectedRTPNotRecorded(t *testing.T) {
	r := newRig(t)
	fs := newFileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	injected := make(chan error, 1)
	resc := peerCall(ctx, t, testpeer.Call{Target: r.p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum,
		Script:  []testpeer.Step{testpeer.Pause(callerToneAt), testpeer.SendAudio(audio.SineWave(1000, time.Second, 12000))},
		Timeout: 30 * time.Second,
		OnMedia: func(ivrdRTP netip.AddrPort) {
			// From shortly after the caller's tone began, for 2 s.
			time.Sleep(callerToneAt + 300*time.Millisecond)
			injected <- testpeer.InjectRTP(ctx, ivrdRTP, 0xbad5eed, audio.SineWave(3000, 2*time.Second, 12000))
		}})
	sid := r.answered(callerNum)
	rec, tRec, tPrompt := r.monitoredCall(sid, fs, 5*time.Second)
	res := <-resc
	if err := <-injected; err != nil {
		t.Fatal("injector:", err)
	}
	checkBothWays(t, rec, tRec, tPrompt, heardFrom(res, res.AnsweredAt))
	if spans := audio.ToneSpans(rec, audio.Rate, 3000, 40*time.Millisecond, 0.3); len(spans) > 0 {
		t.Fatalf("the injected 3 kHz is in the recording: %v", spans)
	}
}

// TestSIPAdmission: --sip-allow refuses INVITEs from other sources with 403; --sip-invite-rate
// refuses a source's INVITEs beyond the rate with 503 and Retry-After.
func TestSIPAdmission(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := func(p *ivrd) testpeer.Result {
		return <-peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: "6599999999", Timeout: 10 * time.Second})
	}
	data := filepath.Join(t.TempDir(), "data")
	p := startIvrd(t, data, "", "", "--sip-allow", "10.0.0.0/8,192.0.2.0/24")
	if res := call(p); res.Status != 403 {
		t.Errorf("INVITE from 127.0.0.1 with --sip-allow 10.0.0.0/8,192.0.2.0/24: %d, want 403", res.Status)
	}
	data2 := filepath.Join(t.TempDir(), "data")
	p2 := startIvrd(t, data2, "", "", "--sip-invite-rate", "0.5")
	if res := call(p2); res.Status != 404 {
		t.Errorf("first INVITE: %d, want 404 (no such number)", res.Status)
	}
	res := call(p2)
	if res.Status != 503 {
		t.Fatalf("second INVITE within 2 s at --sip-invite-rate 0.5: %d, want 503", res.Status)
	}
	for _, m := range testpeer.Messages(res.Trace) {
		if m.Received && m.Status == 503 {
			if ra, ok := m.Header("Retry-After"); !ok || ra == "" || ra == "0" {
				t.Errorf("503 without Retry-After: %q", ra)
			}
		}
	}
	if !strings.Contains(p2.logText(), "INVITEs over the rate limit refused") {
		t.Error("the refusal is not in the log")
	}
}
