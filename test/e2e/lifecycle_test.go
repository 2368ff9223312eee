package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// TestForcedHangupRightAfterMonitor (issue 11): the app sends Monitor and a forced Hangup back
// to back as soon as the Answer notification arrives. Whatever the Monitor's answer was doing
// at that moment, the call ends at once, every time: with a BYE once the 200 OK went out, else
// with 603; the app gets the Hangup's notification and the Monitor's, call_state=ended, and
// nothing after them says ongoing.
func TestForcedHangupRightAfterMonitor(t *testing.T) {
	r := newRig(t)
	const runs = 12
	byes, refusals, quicker := 0, 0, 0
	var last string
	for i := 0; i < runs; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resc := r.callIn(ctx, callerNum, nil, 0) // the caller waits for ivrd to end the call
		sid := r.answered(callerNum)
		params := url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}}
		if i%2 == 1 {
			params.Set("msg", "This call is recorded.")
		}
		r.do("middle/monitor", "success_ok", params)
		tHang := time.Now()
		r.do("end/hangup", "success_ok", url.Values{"session": {sid}, "force": {"enabled"}, "notify_url": {r.a.url("/hangup")}})
		var res = <-resc
		cancel()
		took := time.Since(tHang)
		switch {
		case res.Answered && res.ByeFromServer:
			byes++
		case !res.Answered && res.Status == 603:
			refusals++
		default:
			t.Fatalf("run %d: answered=%v bye=%v status=%d: the call was not ended", i, res.Answered, res.ByeFromServer, res.Status)
		}
		if took > 5*time.Second {
			t.Fatalf("run %d: the call ended %v after the Hangup", i, took)
		}
		// Either the Hangup quicker the Monitor (its notification says ended, nothing was
		// recorded), or the Monitor was quicker (ongoing, then its recording once the call ended).
		var seq []string
		hangup, monitorEnded, recorded := false, false, false
		for !hangup || !monitorEnded {
			n := r.a.next(10 * time.Second)
			if n.params.Get("session") != sid {
				t.Fatalf("run %d: notification of another session: %v", i, n.params)
			}
			st := n.params.Get("call_state")
			if len(seq) > 0 && strings.HasSuffix(seq[len(seq)-1], "ended") && st != "ended" {
				t.Fatalf("run %d: %s says %s after the end (%v)", i, n.path, st, seq)
			}
			seq = append(seq, n.path+":"+st)
			switch {
			case n.path == "/hangup":
				hangup = st == "ended"
			case n.params.Get("monitor_url") != "":
				recorded, monitorEnded = true, st == "ended"
			case st == "ended":
				monitorEnded = true
			}
		}
		if strings.Contains(strings.Join(seq, " "), "/monitor:ongoing") != recorded {
			t.Fatalf("run %d: notifications %v", i, seq)
		}
		if recorded {
			quicker++
		}
		last = sid
	}
	t.Logf("%d calls: %d ended by BYE, %d refused with 603; the Monitor was quicker than the Hangup %d times", runs, byes, refusals, quicker)

	// The session's timeline is in the database: the Monitor and the Hangup with their
	// parameters, and the end of the call.
	st, err := store.Open(filepath.Join(r.p.data, "ivrd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var events []string
	var err2 error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var evs []store.SessionEvent
		evs, err2 = st.SessionEvents(last)
		events = events[:0]
		for _, e := range evs {
			var entry struct {
				Block  string            `json:"block"`
				Params map[string]string `json:"params"`
			}
			_ = json.Unmarshal(e.Data, &entry)
			if entry.Params["access_token"] != "" {
				t.Fatal("the access token is in the timeline")
			}
			events = append(events, strings.TrimSpace(e.Event+" "+entry.Block+" "+entry.Params["force"]))
		}
		if len(events) > 0 && events[len(events)-1] == "close" {
			break
		}
	}
	tl := strings.Join(events, ", ")
	for _, want := range []string{"incoming", "accept monitor", "force hangup enabled", "down", "settle", "close"} {
		if !strings.Contains(tl, want) {
			t.Fatalf("timeline lacks %q: %s (%v)", want, tl, err2)
		}
	}
}
