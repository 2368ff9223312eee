package console

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

const hostile = `<script>alert("x")</script>`

// fakeViews are every page's data, with hostile strings wherever an app or a caller controls
// the text (numbers, parameters, notification fields, URLs).
func fakeViews() map[string]view {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	live := liveView{Source: "/console/live.json", Operator: true, Calls: []liveRow{
		{Session: "S1", App: "AP1", From: hostile, To: "+100", Started: "2026-03-01 18:00:00", Duration: "0:42", Block: "play", Phase: "running", Recording: true},
		{Session: "S2", App: "AP2", From: "+652", To: "+100", Phase: "ringing", Paused: true, Recording: true},
	}}
	recs := recordingsView{Operator: true, CSRF: "c5rf", Return: "/console/recordings", Pager: pager{Page: 2, Prev: 1, Next: 3, Total: 41},
		Recs: []recRow{{ID: "rec-1", App: "AP1", Session: "S1", Kind: "monitor", Channels: "dual", Started: t0, Duration: 61 * time.Second, Size: 492480,
			Audio: "/console/recordings/rec-1/audio", Download: "/console/recordings/rec-1/audio?download=1", Delete: "/console/recordings/rec-1/delete"}}}
	notes := notesView{Operator: true, CSRF: "c5rf", Return: "/console/outbox", Notes: []noteRow{
		{ID: 7, DeliveryID: "S1-1", App: "AP1", Session: "S1", Block: "answer", CallState: "ringing", Target: "http://app/" + hostile, State: "failed",
			LastError: hostile, Created: t0, Attempts: 2, Retry: true, Fields: []kv{{"from", hostile}},
			Tries: []attemptRow{{N: 1, At: t0, Code: 503, Duration: 3 * time.Millisecond, Error: "HTTP 503"}, {N: 2, At: t0, Error: "connection refused"}}},
		{ID: 8, DeliveryID: "S1-2", Block: "play", State: "pending", NextAt: t0},
	}}
	return map[string]view{
		"message":    {Title: "Not found", Error: "No session " + hostile + "."},
		"login":      {Title: "Sign in", CSRF: "c5rf", Error: "Wrong password.", Data: loginView{Next: "/console/x", Operator: true, AppID: hostile}},
		"live":       {Title: "Live calls", Section: "live", Who: principal{Role: roleOperator}, CSRF: "c5rf", Demo: true, Data: live},
		"sessions":   {Title: "Sessions", Who: principal{Role: roleApp, AppID: "AP1"}, CSRF: "c5rf", Data: sessionsView{Operator: false, Pager: pager{Page: 1, Next: 2, Total: -1}, Rows: []sessionRow{{ID: "S1", From: hostile, Started: t0, Duration: -1, Line: "up", Phase: "running"}}}},
		"session":    {Title: "Session S1", Who: principal{Role: roleOperator}, CSRF: "c5rf", Data: timelineView{Operator: true, S: sessionRow{ID: "S1", App: "AP1", From: hostile, Started: t0, Duration: 30 * time.Second, Cause: hostile}, Blocks: []blockRow{{Run: 1, Block: "monitor", Event: "accept", Params: []kv{{"msg", hostile}}, Accepted: t0, Done: t0, Status: "done, call_state=ongoing", Recording: "rec-1"}}, Steps: []stepRow{{Step: 1, At: t0, Event: "accept", Block: "monitor", Run: 1, Params: []kv{{"msg", hostile}}}}, Notes: notes, Recordings: recs}},
		"recordings": {Title: "Recordings", Who: principal{Role: roleOperator}, CSRF: "c5rf", Data: recs},
		"outbox":     {Title: "Outbox", Who: principal{Role: roleApp, AppID: "AP1"}, CSRF: "c5rf", Data: outboxView{Pending: notesView{CSRF: "c5rf"}, Failed: notes, Limit: 200}},
		"demo":       {Title: "Demo", Who: principal{Role: roleApp, AppID: "AP1"}, CSRF: "c5rf", Demo: true, Data: demoView{Demo: Demo{Number: "100", SIP: "127.0.0.1:5060"}, Live: live, Recs: recs}},
	}
}

var (
	postForm = regexp.MustCompile(`(?s)<form method="post"[^>]*>.*?</form>`)
)

// TestTemplates: every page renders; nothing an app or a caller sent is HTML; every form
// that POSTs carries the CSRF token; what a page must show is there.
func TestTemplates(t *testing.T) {
	p, err := parsePages(time.FixedZone("GMT+08:00", 8*3600))
	if err != nil {
		t.Fatal(err)
	}
	c := &Console{pages: p}
	wants := map[string][]string{
		"message":    {"No session &lt;script&gt;"},
		"login":      {`id="app-login"`, `id="operator-login"`, `name="next" value="/console/x"`, "Wrong password."},
		"live":       {`data-src="/console/live.json"`, "<th>App</th>", "paused", ">on<", "0:42", `href="/console/demo"`, "operator (every app)"},
		"sessions":   {`href="/console/sessions/S1"`, "app AP1", "older →"},
		"session":    {"2026-03-01 18:00:00", "(30.0 s)", "done, call_state=ongoing", "recording rec-1", `data-code="503"`, "no answer", "connection refused", "Retry now", "rec-1"},
		"recordings": {"41 recordings", `<audio controls preload="metadata" src="/console/recordings/rec-1/audio">`, `<canvas class="wave"`, `download="rec-1.mp3"`, "1:01", "492.5 kB", "monitor, dual", "← newer"},
		"outbox":     {"Pending (0)", "Failed (2)", "Retry now", "next 2026-03-01 18:00:00"},
		"demo":       {"sip:100@127.0.0.1:5060", `data-src="/console/live.json"`, "rec-1"},
	}
	for name, v := range fakeViews() {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c.render(w, 200, name, v)
			body := w.Body.String()
			if w.Code != 200 {
				t.Fatalf("render: %d %s", w.Code, body)
			}
			if strings.Contains(body, "<script>alert") {
				t.Errorf("hostile text rendered as HTML")
			}
			for _, want := range wants[name] {
				if !strings.Contains(body, want) {
					t.Errorf("lacks %q", want)
				}
			}
			forms := postForm.FindAllString(body, -1)
			for _, f := range forms {
				if !strings.Contains(f, `<input type="hidden" name="csrf" value="c5rf">`) {
					t.Errorf("a form without the CSRF token: %s", f)
				}
			}
			if v.Who.Role != "" && !strings.Contains(body, `action="/console/logout"`) {
				t.Error("no sign-out form")
			}
			if strings.Contains(body, "<script>") && !strings.Contains(body, `<script src="/console/static/console.js" defer></script>`) {
				t.Error("an inline script")
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}

// TestLiveColumnsFollowTheOperator: an app's live table has no App column, in the page and
// in console.js's rows (data-operator).
func TestLiveColumnsFollowTheOperator(t *testing.T) {
	p, err := parsePages(time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	c := &Console{pages: p}
	v := fakeViews()["live"]
	lv := v.Data.(liveView)
	lv.Operator = false
	v.Data = lv
	w := httptest.NewRecorder()
	c.render(w, 200, "live", v)
	if body := w.Body.String(); strings.Contains(body, "<th>App</th>") || !strings.Contains(body, `data-operator="false"`) || strings.Contains(body, "<td>AP1</td>") {
		t.Fatalf("app's live table:\n%s", body)
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{850 * time.Millisecond, "850 ms"}, {12500 * time.Millisecond, "12.5 s"}, {185 * time.Second, "3:05"}, {3723 * time.Second, "1:02:03"}, {-1, "—"}} {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    int64
		want string
	}{{900, "900 B"}, {12345, "12.3 kB"}, {4_500_000, "4.5 MB"}} {
		if got := formatSize(tc.n); got != tc.want {
			t.Errorf("formatSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "0:00"}, {7900 * time.Millisecond, "0:07"}, {725 * time.Second, "12:05"}, {3723 * time.Second, "1:02:03"}, {-time.Second, "0:00"}} {
		if got := formatClock(tc.d); got != tc.want {
			t.Errorf("formatClock(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if p := newPager(1, 20, 20, 41); p.Next != 2 || p.Prev != 0 {
		t.Errorf("pager %+v", p)
	}
	if p := newPager(3, 20, 1, 41); p.Next != 0 || p.Prev != 2 {
		t.Errorf("pager %+v", p)
	}
	if p := newPager(1, 50, 50, -1); p.Next != 2 {
		t.Errorf("pager without a total %+v", p)
	}
}
