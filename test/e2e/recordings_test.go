package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/client"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// number2 is the second app's number in the recordings tests.
const number2 = "+6561234568"

// ivrdRun runs an ivrd admin command that may fail and returns its output (stdout and stderr).
func ivrdRun(args ...string) (string, error) {
	out, err := exec.Command(ivrdBin, args...).CombinedOutput()
	return string(out), err
}

// recordedCall is one monitored call: its session and what the app was given.
type recordedCall struct {
	sid        string
	monitorURL string
	recordURL  string // when it ran a Record block
}

// recordCall places a call to num (the caller sends 1 kHz 0.5–1.5 s after the answer); the app
// runs Monitor, then Record (when record is set) for 2 s, then hangs up, and collects the URLs.
func recordCall(t *testing.T, a *app, sip, num string, record bool) recordedCall {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resc := peerCall(ctx, t, testpeer.Call{Target: sip, Number: strings.TrimPrefix(num, "+"), From: callerNum,
		Script:  []testpeer.Step{testpeer.Pause(500 * time.Millisecond), testpeer.SendAudio(audio.SineWave(1000, time.Second, 12000))},
		Timeout: 25 * time.Second})
	ans := a.next(10 * time.Second)
	rc := recordedCall{sid: ans.params.Get("session")}
	if st := a.call("middle/monitor", url.Values{"session": {rc.sid}, "notify_url": {a.url("/monitor")}}); st != client.StatusOK {
		t.Fatal("monitor:", st)
	}
	expect(t, a.next(10*time.Second), "/monitor", map[string]string{"call_state": "ongoing"})
	if record {
		if st := a.call("middle/record", url.Values{"session": {rc.sid}, "max_duration": {"2"}, "notify_url": {a.url("/record")}}); st != client.StatusOK {
			t.Fatal("record:", st)
		}
		n := a.next(10 * time.Second)
		expect(t, n, "/record", map[string]string{"record_url": "*"})
		rc.recordURL = n.params.Get("record_url")
	} else {
		time.Sleep(2 * time.Second)
	}
	if st := a.call("end/hangup", url.Values{"session": {rc.sid}, "notify_url": {a.url("/hangup")}}); st != client.StatusOK {
		t.Fatal("hangup:", st)
	}
	notes := a.nextTwo(10 * time.Second)
	expect(t, notes["/monitor"], "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*"})
	rc.monitorURL = notes["/monitor"].params.Get("monitor_url")
	<-resc
	return rc
}

// recordingID is the id in a recording's URL (…/recordings/<id>.mp3?…).
func recordingID(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(filepath.Base(p.Path), ".mp3")
}

// list lists a's recordings with params and fails unless the API answers success_ok.
func (a *app) list(params url.Values) client.RecordingPage {
	a.t.Helper()
	page, err := a.api().Recordings(context.Background(), params)
	if err != nil || page.Status != client.StatusOK {
		a.t.Fatalf("recordings/list %v: %+v, %v", params, page, err)
	}
	return page
}

func ids(page client.RecordingPage) string {
	var s []string
	for _, e := range page.Entries {
		s = append(s, e.ID)
	}
	return strings.Join(s, ",")
}

// TestRecordingsAPI: on real calls, an app lists its recordings (by session, by date, a page at
// a time), fetches one with a fresh URL that downloads and decodes to the call, and deletes
// one (its URLs then answer 404 and it is no longer listed); another app's recordings are
// refused; the admin CLI lists and deletes them too.
func TestRecordingsAPI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	b := newAppOn(t, data, number2)
	p := startIvrd(t, data, "", "")
	a.ivrd, b.ivrd = "http://"+p.http, "http://"+p.http

	c1 := recordCall(t, a, p.sip, number, true) // a Monitor and a Record recording
	time.Sleep(1100 * time.Millisecond)         // the next call starts in a later second
	c2 := recordCall(t, a, p.sip, number, false)
	cb := recordCall(t, b, p.sip, number2, false)
	m1, r1, m2 := recordingID(t, c1.monitorURL), recordingID(t, c1.recordURL), recordingID(t, c2.monitorURL)

	all := a.list(nil)
	if ids(all) != strings.Join([]string{m2, r1, m1}, ",") || all.TotalEntries != "3" || all.EntriesCount != "3" ||
		all.Page != "1" || all.PageSize != "100" {
		t.Fatalf("list: %+v; want %s,%s,%s newest first", all, m2, r1, m1)
	}
	byID := map[string]client.Recording{}
	for _, e := range all.Entries {
		byID[e.ID] = e
		ms, _ := strconv.Atoi(e.DurationMS)
		size, _ := strconv.Atoi(e.SizeBytes)
		if e.Channels != "mono" || ms < 1500 || ms > 6000 || size < 1000 || e.URL != "" {
			t.Errorf("entry %+v", e)
		}
	}
	if e := byID[m1]; e.Session != c1.sid || e.Kind != "monitor" || byID[r1].Kind != "record" || byID[r1].Session != c1.sid || byID[m2].Session != c2.sid {
		t.Fatalf("entries %+v", byID)
	}
	upToM1 := m1 // to is inclusive to the second: the Record began within a second of the Monitor
	if byID[r1].Date == byID[m1].Date {
		upToM1 = r1 + "," + m1
	}
	for q, want := range map[string]string{
		"session=" + c1.sid:                            r1 + "," + m1,
		"session=" + c2.sid:                            m2,
		"from=" + byID[m2].Date:                        m2,
		"to=" + byID[m1].Date:                          upToM1,
		"page_size=2":                                  m2 + "," + r1,
		"page_size=2&page=2":                           m1,
		"from=2000-01-01+00:00:00&to=" + byID[m2].Date: m2 + "," + r1 + "," + m1,
	} {
		v, _ := url.ParseQuery(q)
		page := a.list(v)
		if ids(page) != want {
			t.Errorf("list %s: %s, want %s", q, ids(page), want)
		}
		if strings.HasPrefix(q, "page_size") && page.TotalEntries != "3" {
			t.Errorf("list %s: total %s", q, page.TotalEntries)
		}
	}
	for q, want := range map[string]string{
		"session=" + cb.sid: "error_session_access_denied",
		"session=Snope":     "error_invalid_session",
		"from=yesterday":    "error_invalid_from",
		"to=2026-01-01":     "error_invalid_to",
		"page=0":            "error_invalid_page",
		"page_size=500":     "error_invalid_page_size",
	} {
		v, _ := url.ParseQuery(q)
		if page, err := a.api().Recordings(context.Background(), v); err != nil || page.Status != want || page.Entries != nil {
			t.Errorf("list %s: %+v %v, want %s", q, page, err, want)
		}
	}

	// get: the metadata and a fresh URL, which downloads and decodes to the call.
	got, st, err := a.api().Recording(context.Background(), m1)
	if err != nil || st != client.StatusOK || got.ID != m1 || got.Date != byID[m1].Date || got.URL == "" {
		t.Fatalf("get: %+v %s %v", got, st, err)
	}
	// It holds the Record block's beep (0.3 s) and the caller's 1 s of 1 kHz after it. The beep
	// starts within moments of the Monitor, and a recording's first audio.MP3EncoderDelay
	// samples (138 ms) are silence an MP3 cannot carry (see package recording): what is heard
	// of the beep starts by then and ends about 0.3 s in.
	pcm := recording(t, got.URL)
	const window = 40 * time.Millisecond
	if spans := audio.ToneSpans(pcm, audio.Rate, 1000, window, 0.5); len(spans) != 2 ||
		spans[0].Start > audio.Duration(audio.MP3EncoderDelay)+window || !near(spans[0].End, 300*time.Millisecond, 2*window) ||
		!near(spans[1].Len(), time.Second, 200*time.Millisecond) {
		t.Fatalf("the fresh URL's recording: 1 kHz at %v, want the beep and the caller's second", spans)
	}
	for id, want := range map[string]string{recordingID(t, cb.monitorURL): "error_session_access_denied", "rec-nope": "error_recording_not_found"} {
		if _, st, err := a.api().Recording(context.Background(), id); err != nil || st != want {
			t.Errorf("get %s: %s %v, want %s", id, st, err, want)
		}
		if st, err := a.api().DeleteRecording(context.Background(), id); err != nil || st != want {
			t.Errorf("delete %s: %s %v, want %s", id, st, err, want)
		}
	}

	// delete: the file and the row; both URLs answer 404 from then on.
	if st, err := a.api().DeleteRecording(context.Background(), m1); err != nil || st != client.StatusOK {
		t.Fatalf("delete: %s %v", st, err)
	}
	for _, u := range []string{c1.monitorURL, got.URL} {
		if code, _ := download(t, u); code != http.StatusNotFound {
			t.Errorf("URL of a deleted recording: HTTP %d, want 404", code)
		}
	}
	if _, st, _ := a.api().Recording(context.Background(), m1); st != "error_recording_not_found" {
		t.Errorf("get after delete: %s", st)
	}
	if page := a.list(nil); ids(page) != m2+","+r1 || page.TotalEntries != "2" {
		t.Errorf("after delete: %s (%s)", ids(page), page.TotalEntries)
	}
	if code, _ := download(t, c1.recordURL); code != 200 {
		t.Errorf("the other recording of the session: HTTP %d", code)
	}

	// The admin CLI, beside the running server.
	rows := jsonLines(t, ivrdCmd(t, "recording", "list", "--data", data, "--app", a.id))
	if len(rows) != 2 || rows[0]["id"] != m2 || rows[1]["id"] != r1 || rows[0]["app_id"] != a.id || rows[1]["session"] != c1.sid ||
		rows[0]["channels"] != "mono" || rows[0]["key"] != m2+".mp3" {
		t.Fatalf("recording list --app: %v", rows)
	}
	if rows := jsonLines(t, ivrdCmd(t, "recording", "list", "--data", data)); len(rows) != 3 {
		t.Fatalf("recording list: %v", rows)
	}
	if rows := jsonLines(t, ivrdCmd(t, "recording", "list", "--data", data, "--session", cb.sid)); len(rows) != 1 || rows[0]["app_id"] != b.id {
		t.Fatalf("recording list --session: %v", rows)
	}
	ivrdCmd(t, "recording", "delete", "--data", data, "--id", m2)
	if page := a.list(nil); ids(page) != r1 {
		t.Errorf("after the CLI deleted %s: %s", m2, ids(page))
	}
	if code, _ := download(t, c2.monitorURL); code != http.StatusNotFound {
		t.Errorf("URL of a recording the CLI deleted: HTTP %d, want 404", code)
	}
	if out, err := ivrdRun("recording", "delete", "--data", data, "--id", m2); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("deleting it again: %v %q", err, out)
	}
	if out, err := ivrdRun("recording", "delete", "--data", data); err == nil || !strings.Contains(out, "--id is required") {
		t.Errorf("delete without --id: %v %q", err, out)
	}
}

// TestRecordingsRetention: with --retention, a recording stored longer ago than that is
// deleted (its URL then answers 404, it is no longer listed) while a fresh one is kept.
func TestRecordingsRetention(t *testing.T) {
	r := newRig(t, "--retention", "6s")
	first := recordCall(t, r.a, r.p.sip, number, false)
	tFirst := time.Now() // the first recording was stored a moment ago
	time.Sleep(2 * time.Second)
	second := recordCall(t, r.a, r.p.sip, number, false) // stored 4 s or more after the first
	if page := r.a.list(nil); page.TotalEntries != "2" {
		t.Fatalf("both recordings listed: %+v", page)
	}
	// The first goes 6 s after it was stored, at the next sweep (every second); by then the
	// second is at most 5 s old.
	var page client.RecordingPage
	for page = r.a.list(nil); page.TotalEntries == "2" && time.Now().Before(tFirst.Add(9*time.Second)); page = r.a.list(nil) {
		time.Sleep(100 * time.Millisecond)
	}
	if gone := time.Since(tFirst); ids(page) != recordingID(t, second.monitorURL) || gone < 5900*time.Millisecond {
		t.Fatalf("%v after the first was stored: %s listed, want only the second (%s)", gone, ids(page), recordingID(t, second.monitorURL))
	}
	if code, _ := download(t, first.monitorURL); code != http.StatusNotFound {
		t.Fatalf("URL of the expired recording: HTTP %d, want 404", code)
	}
	if code, _ := download(t, second.monitorURL); code != 200 {
		t.Fatalf("URL of the fresh recording: HTTP %d", code)
	}
	if !strings.Contains(r.p.logText(), "recording expired") {
		t.Fatal("no log line for the expired recording")
	}
}
