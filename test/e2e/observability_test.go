package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/metrics/metricstest"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// scrape GETs ivrd's /metrics, checks it with promtool and returns its values.
func scrape(t *testing.T, addr string) metricstest.Values {
	t.Helper()
	return metricstest.Scrape(t, "http://"+addr+"/metrics")
}

// jsonLog is ivrd's log (--log-format json) as raw lines and decoded ones; lines that are not
// JSON (what ivrd prints on stdout) are left out.
func jsonLog(t *testing.T, p *ivrd) (raw []string, lines []map[string]any) {
	t.Helper()
	for _, l := range strings.Split(p.logText(), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		raw, lines = append(raw, l), append(lines, m)
	}
	return raw, lines
}

// A known sequence of real calls, as /metrics counts it (checked by promtool too) and as the
// JSON log tells it: a call refused with 404; Monitor → Play → Hangup; a caller who hangs up
// during a Play; a few good and bad API requests. Every log line that names a routed call's
// Call-ID names its session, and each routed call has exactly one "call ended" line saying
// who hung up.
func TestMetricsAndCallLogs(t *testing.T) {
	r := newRig(t, "--log-format", "json")
	a := r.a
	before := scrape(t, r.p.http)
	if before.Sum("ivrd_calls_total") != 0 || before.Get("ivrd_notifications_pending") != 0 || !before.Has("ivrd_calls_total", "outcome", "refused") {
		t.Fatalf("metrics at start: calls %v, pending %v", before.Sum("ivrd_calls_total"), before.Get("ivrd_notifications_pending"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// 1. An unknown number: 404, no session.
	refused := <-peerCall(ctx, t, testpeer.Call{Target: r.p.sip, Number: "999", From: callerNum, Timeout: 10 * time.Second})
	if refused.Status != 404 {
		t.Fatalf("call to an unknown number: SIP %d", refused.Status)
	}

	// 2. Monitor → Play → Hangup: ivrd hangs up.
	res2 := r.callIn(ctx, callerNum, nil, 0)
	sid2 := r.answered(callerNum)
	r.do("middle/monitor", "success_ok", url.Values{"session": {sid2}, "msg": {"Recorded."}, "notify_url": {a.url("/monitor")}})
	expect(t, a.next(15*time.Second), "/monitor", map[string]string{"call_state": "ongoing"})
	r.do("middle/play", "success_ok", url.Values{"session": {sid2}, "msg": {"Hello."}, "notify_url": {a.url("/play")}})
	expect(t, a.next(15*time.Second), "/play", map[string]string{"call_state": "ongoing"})
	r.do("end/hangup", "success_ok", url.Values{"session": {sid2}, "notify_url": {a.url("/hangup")}})
	ends := a.nextTwo(15 * time.Second)
	expect(t, ends["/hangup"], "/hangup", map[string]string{"call_state": "ended"})
	expect(t, ends["/monitor"], "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*"})
	murl := ends["/monitor"].params.Get("monitor_url")
	u, _ := url.Parse(murl)
	recID := strings.TrimSuffix(path.Base(u.Path), ".mp3")
	if rr := <-res2; !rr.ByeFromServer {
		t.Fatalf("call 2 not hung up by ivrd: %+v", rr.Status)
	}

	// 3. The caller hangs up 2 s into a long Play.
	res3 := r.callIn(ctx, callerNum2, nil, 2*time.Second)
	sid3 := r.answered(callerNum2)
	long := strings.Repeat("This prompt goes on for a long while. ", 6)
	r.do("middle/play", "success_ok", url.Values{"session": {sid3}, "msg": {long}, "notify_url": {a.url("/play")}})
	expect(t, a.next(20*time.Second), "/play", map[string]string{"call_state": "ended"})
	if rr := <-res3; rr.ByeFromServer {
		t.Fatal("call 3: ivrd sent BYE, the caller was to hang up")
	}

	// 4. API requests, good and bad.
	bad := *a
	bad.token = "wrong"
	if st := bad.callBody("middle/play", url.Values{"session": {sid3}})["status"]; st != "error_invalid_access_token" {
		t.Fatal("bad token:", st)
	}
	r.do("middle/play", "error_invalid_session", url.Values{"session": {"S-nope"}})
	r.do("middle/play", "error_session_ended", url.Values{"session": {sid2}})
	r.do("recordings/get", "success_ok", url.Values{"id": {recID}})

	// Everything owed is delivered (7 notifications: 5 of call 2, 2 of call 3).
	var v metricstest.Values
	deadline := time.Now().Add(10 * time.Second)
	for {
		v = scrape(t, r.p.http)
		if v.Get("ivrd_notifications_delivered_total") >= 7 && v.Get("ivrd_notifications_pending") == 0 &&
			v.Get("ivrd_calls_active", "direction", "inbound") == 0 && v.Get("ivrd_recordings_active", "kind", "monitor") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: delivered %v, pending %v, calls active %v", v.Get("ivrd_notifications_delivered_total"),
				v.Get("ivrd_notifications_pending"), v.Get("ivrd_calls_active", "direction", "inbound"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, mp3 := download(t, murl)
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"ivrd_calls_total", []string{"direction", "inbound", "outcome", "refused"}, 1},
		{"ivrd_calls_total", []string{"direction", "inbound", "outcome", "ivrd_hangup"}, 1},
		{"ivrd_calls_total", []string{"direction", "inbound", "outcome", "caller_hangup"}, 1},
		{"ivrd_calls_total", []string{"direction", "inbound", "outcome", "unanswered"}, 0},
		{"ivrd_blocks_total", []string{"block", "monitor", "status", "completed"}, 1},
		{"ivrd_blocks_total", []string{"block", "play", "status", "completed"}, 1},
		{"ivrd_blocks_total", []string{"block", "hangup", "status", "completed"}, 1},
		{"ivrd_blocks_total", []string{"block", "play", "status", "interrupted"}, 1},
		{"ivrd_recordings_finished_total", []string{"kind", "monitor"}, 1},
		{"ivrd_recordings_failed_total", []string{"kind", "monitor"}, 0},
		{"ivrd_recording_bytes_total", []string{"kind", "monitor"}, float64(len(mp3))},
		{"ivrd_notifications_delivered_total", nil, 7},
		{"ivrd_notification_attempts_total", []string{"result", "ok"}, 7},
		{"ivrd_notification_attempts_total", []string{"result", "error"}, 0},
		{"ivrd_notification_delivery_seconds", nil, 7},
		{"ivrd_notifications_failed_total", nil, 0},
		{"ivrd_api_requests_total", []string{"endpoint", "middle/monitor", "status", "success_ok"}, 1},
		{"ivrd_api_requests_total", []string{"endpoint", "middle/play", "status", "success_ok"}, 2},
		{"ivrd_api_requests_total", []string{"endpoint", "end/hangup", "status", "success_ok"}, 1},
		{"ivrd_api_requests_total", []string{"endpoint", "middle/play", "status", "error_invalid_access_token"}, 1},
		{"ivrd_api_requests_total", []string{"endpoint", "middle/play", "status", "error_invalid_session"}, 1},
		{"ivrd_api_requests_total", []string{"endpoint", "middle/play", "status", "error_session_ended"}, 1},
		{"ivrd_api_requests_total", []string{"endpoint", "recordings/get", "status", "success_ok"}, 1},
		{"ivrd_api_request_duration_seconds", []string{"endpoint", "middle/play"}, 5},
		{"ivrd_mp3_encoder_queued_blocks", nil, 0},
	}
	for _, w := range want {
		if got := v.Get(w.name, w.labels...); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	for name, n := range map[string]float64{"ivrd_calls_total": 3, "ivrd_blocks_total": 4, "ivrd_api_requests_total": 8} {
		if got := v.Sum(name); got != n {
			t.Errorf("%s sums to %v, want %v", name, got, n)
		}
	}
	// The log.
	raw, lines := jsonLog(t, r.p)
	talk := 0.0 // ms calls 2 and 3 were up

	for _, c := range []struct {
		sid, who, cause, recording, from string
		blocks                           float64
	}{
		{sid2, "ivrd", "hangup", recID, "+" + callerNum, 3},
		{sid3, "caller", "far end hung up", "", "+" + callerNum2, 1},
	} {
		callID := ""
		var ended []map[string]any
		for _, l := range lines {
			if l["session"] != c.sid {
				continue
			}
			if id, _ := l["call_id"].(string); id != "" {
				callID = id
			}
			if l["msg"] == "call ended" {
				ended = append(ended, l)
			}
		}
		if callID == "" {
			t.Fatalf("no line of session %s names its Call-ID", c.sid)
		}
		for i, l := range raw {
			if strings.Contains(l, callID) && lines[i]["session"] != c.sid {
				t.Errorf("a line naming Call-ID %s without session %s: %s", callID, c.sid, l)
			}
		}
		if len(ended) != 1 {
			t.Fatalf("session %s: %d call ended lines: %v", c.sid, len(ended), ended)
		}
		e := ended[0]
		talk += e["talk_ms"].(float64)
		if e["level"] != "INFO" || e["hung_up_by"] != c.who || e["cause"] != c.cause || e["recording"] != c.recording ||
			e["from"] != c.from || e["to"] != number || e["blocks"] != c.blocks || e["call_id"] != callID ||
			e["duration_ms"].(float64) < 1000 || e["talk_ms"].(float64) <= 0 {
			t.Errorf("session %s: call ended line %v", c.sid, e)
		}
	}
	for _, l := range lines {
		if l["msg"] == "call to unknown number" && (l["call_id"] == nil || l["session"] != nil) {
			t.Errorf("refusal line: %v", l)
		}
	}

	// A frame every 20 ms while calls 2 and 3 were up (the 200 OK to the BYE: a few more or less).
	sent, late, lost := v.Get("ivrd_rtp_frames_sent_total"), v.Get("ivrd_rtp_frames_late_total"), v.Get("ivrd_rtp_frames_lost_total")
	t.Logf("RTP frames: %v sent, %v late, %v lost, over %v ms of calls", sent, late, lost, talk)
	if due := talk / 20; sent+lost < due-20 || sent > due+20 || late > sent {
		t.Errorf("RTP frames: %v sent, %v late, %v lost; about %v were due", sent, late, lost, due)
	}
}

// /readyz answers 503 with the reason while the data directory cannot be written (ivrd runs as
// nobody, the directory is made read-only under it) and 200 again once it can; /healthz, the
// liveness probe, answers 200 throughout.
func TestReadyzReadOnlyData(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs ivrd as nobody and changes its data directory's owner")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	parent, err := os.MkdirTemp("", "ivrd-readyz")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(parent, "data")
	newAppOn(t, data, number)
	if out, err := exec.Command("chown", "-R", "65534:65534", data).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	p := startIvrdUnder(t, []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, data, "", "")
	wait := func(code int, has string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, body := probe(t, p.http, "/readyz")
			if c == code && strings.Contains(body, has) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz: %d %q, want %d with %q", c, body, code, has)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait(200, "ready")
	if err := os.Chmod(data, 0o555); err != nil {
		t.Fatal(err)
	}
	body := wait(503, "data directory: data directory cannot be written")
	t.Logf("read-only: %q", body)
	if c, b := probe(t, p.http, "/healthz"); c != 200 {
		t.Errorf("/healthz while not ready: %d %q", c, b)
	}
	refused := <-peerCall(context.Background(), t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum, Timeout: 10 * time.Second})
	if refused.Status != 503 {
		t.Errorf("call while the data directory is read-only: SIP %d, want 503", refused.Status)
	}
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	wait(200, "ready")
}
