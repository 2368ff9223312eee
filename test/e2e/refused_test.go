package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestRefusedCallsTellTheTruth (issue 10 item 8 on real calls): a call ivrd cannot answer
// ends, and the app that answered its Answer notification with a Monitor gets the Monitor's
// notification with call_state=ended, without monitor_url (nothing was recorded), and nothing
// after it. An INVITE whose offer ivrd cannot take at all (G.729 only) is refused 488 before
// it rings: the app never hears of it.
func TestRefusedCallsTellTheTruth(t *testing.T) {
	target := strings.TrimPrefix(number, "+")
	g729 := testpeer.AudioSDP(1, "127.0.0.1", "RTP/AVP", "18 101", "a=rtpmap:18 G729/8000", "a=rtpmap:101 telephone-event/8000")

	// monitorRefused answers the ringing call with a Monitor and checks what the app hears.
	monitorRefused := func(t *testing.T, r *rig, from string) {
		t.Helper()
		sid := r.answered(from)
		r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")},
			"monitor_notify_url": {r.a.url("/monitor-result")}})
		n := r.a.next(15 * time.Second)
		expect(t, n, "/monitor", map[string]string{"ivr_block": "monitor", "session": sid, "call_state": "ended", "duration": "0", "date": "*"})
		if n.params.Has("monitor_url") {
			t.Fatalf("a monitor that recorded nothing gave monitor_url %q", n.params.Get("monitor_url"))
		}
		r.a.quiet(t, 2*time.Second)
		if st := r.a.call("middle/play", url.Values{"session": {sid}}); st != "error_session_ended" {
			t.Fatalf("play after the refusal: %s", st)
		}
	}

	t.Run("G.729 offer: 488 before it rings", func(t *testing.T) {
		r := newRig(t)
		xml := testpeer.NewDialog(target, callerNum).Invite(nil, "application/sdp", g729).Expect(488).XML()
		res, err := testpeer.Raw{Target: r.p.sip, XML: xml, Timeout: 10 * time.Second}.Run(context.Background())
		if err != nil || res.Status != 488 {
			t.Fatalf("status %d, %v\n%s", res.Status, err, res.Trace)
		}
		r.a.quiet(t, time.Second)
	})

	t.Run("late offer answered with G.729 only", func(t *testing.T) {
		r := newRig(t)
		xml := testpeer.NewDialog(target, callerNum).Invite(nil, "", "").Expect(200).Ack(g729).AwaitBye().XML()
		resc := make(chan testpeer.Result, 1)
		go func() {
			res, err := testpeer.Raw{Target: r.p.sip, XML: xml, Timeout: 20 * time.Second}.Run(context.Background())
			if err != nil {
				t.Logf("sipp: %v", err)
			}
			resc <- res
		}()
		monitorRefused(t, r, callerNum)
		if res := <-resc; !res.ByeFromServer {
			t.Fatalf("the caller got no BYE\n%s", res.Trace)
		}
	})

	t.Run("no RTP port left: 503", func(t *testing.T) {
		lo, _ := freePortRange(t, 2)
		r := newRig(t, "--rtp-ports", fmt.Sprintf("%d-%d", lo, lo+1)) // one call at a time
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		first := r.callIn(ctx, callerNum, nil, 0)
		sid := r.answered(callerNum)
		r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"Hello."}, "notify_url": {r.a.url("/play")}})
		r.a.next(15 * time.Second)
		second := r.callIn(ctx, callerNum2, nil, 0)
		monitorRefused(t, r, callerNum2)
		if res := <-second; res.Status != 503 {
			t.Fatalf("second caller: %d, want 503\n%s", res.Status, res.Trace)
		}
		r.hangup(sid)
		<-first
	})
}
