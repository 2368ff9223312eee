package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/store"
)

// addSession journals a finished call of app with a Monitor, a Play and a Hangup, and queues
// its notifications: the Answer delivered at the second attempt (503, then 200), the Play
// failed, the Monitor's pending.
func (r *rig) addSession(id, app string) {
	r.t.Helper()
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	rec := ivr.SessionRecord{ID: id, AppID: app, From: "+6511111111", To: "+100", Phase: ivr.PhaseEnded, Line: ivr.LineDown,
		StartedAt: t0, AnsweredAt: t0.Add(time.Second), EndedAt: t0.Add(30 * time.Second), Cause: "hung up by the app"}
	data, _ := json.Marshal(rec)
	var events []store.SessionEvent
	for i, e := range []ivr.Entry{
		{Event: "incoming", Phase: ivr.PhaseRinging, Line: ivr.LineRinging},
		{Event: "owe", Delivery: ivr.DeliveryID(id, 1), Target: "http://app.test/answer", CallState: "ringing"},
		{Event: "accept", Run: 1, Block: "monitor", Params: map[string]string{"msg": "Hello <b>there</b>", "notify_url": "http://app.test/m", "session": id}},
		{Event: "recording", Run: 1, Block: "monitor", Result: map[string]string{"recording": "rec-1"}},
		{Event: "done", Run: 1, Block: "monitor", CallState: "ongoing"},
		{Event: "accept", Run: 2, Block: "play", Params: map[string]string{"msg": "Say something", "session": id}},
		{Event: "done", Run: 2, Block: "play", CallState: "ongoing", Result: map[string]string{"tag": "t1"}},
		{Event: "force", Run: 3, Block: "hangup", Params: map[string]string{"force": "enabled", "session": id}},
		{Event: "down", Cause: "hung up by the app", Phase: ivr.PhaseEnding, Line: ivr.LineDown},
	} {
		e.Step, e.At = i+1, t0.Add(time.Duration(i)*time.Second)
		b, _ := json.Marshal(e)
		events = append(events, store.SessionEvent{Step: e.Step, At: e.At, Event: e.Event, Data: b})
	}
	if err := r.st.SaveSession(store.SessionRow{ID: id, AppID: app, State: string(rec.Phase), Data: data}, events...); err != nil {
		r.t.Fatal(err)
	}
	for i, n := range []struct {
		block, state string
		codes        []int
	}{
		{"answer", store.OutboxDelivered, []int{503, 200}},
		{"play", store.OutboxFailed, []int{500}},
		{"monitor", store.OutboxPending, nil},
	} {
		it, err := r.st.EnqueueOutbox(store.OutboxItem{DeliveryID: ivr.DeliveryID(id, i+1), AppID: app, SessionKey: id,
			Target: "http://app.test/" + n.block, Body: []byte("ivr_block=" + n.block + "&session=" + id + "&call_state=ended")})
		if err != nil {
			r.t.Fatal(err)
		}
		for k, code := range n.codes {
			a := store.OutboxAttempt{OutboxID: it.ID, Attempt: k + 1, At: t0.Add(time.Duration(k) * time.Second), Duration: 5 * time.Millisecond, StatusCode: code}
			if code >= 300 {
				a.Error = "HTTP " + http.StatusText(code)
			}
			if err := r.st.AddOutboxAttempt(a); err != nil {
				r.t.Fatal(err)
			}
		}
		switch n.state {
		case store.OutboxDelivered:
			err = r.st.MarkDelivered(it.ID, "", len(n.codes))
		case store.OutboxFailed:
			err = r.st.MarkFailed(it.ID, "", len(n.codes), "HTTP 500")
		}
		if err != nil {
			r.t.Fatal(err)
		}
	}
}

// TestNotReadableWithoutSignIn: no page, no recording, no JSON and no action of the console
// or the demo answers without a signed-in session.
func TestNotReadableWithoutSignIn(t *testing.T) {
	r := newRig(t, testPassword)
	r.addSession("S1", "AP1")
	r.addRecording("rec-1", "AP1", "S1", "ID3 mp3 bytes")
	b := r.browser()
	for _, path := range []string{"/console/", "/console/sessions", "/console/sessions/S1", "/console/recordings",
		"/console/recordings/rec-1/audio", "/console/recordings/rec-1/audio?download=1", "/console/outbox", "/console/demo"} {
		a := b.get(path)
		if a.code != http.StatusSeeOther || a.loc != loginPath+"?next="+url.QueryEscape(path) {
			t.Errorf("GET %s: %d %s", path, a.code, a.loc)
		}
		if strings.Contains(a.body, "ID3 mp3 bytes") || strings.Contains(a.body, "6511111111") || strings.Contains(a.body, "token-one") {
			t.Errorf("GET %s shows data: %s", path, a.body)
		}
	}
	if a := b.get("/console/live.json"); a.code != http.StatusUnauthorized {
		t.Errorf("live.json: %d", a.code)
	}
	for _, path := range []string{"/console/recordings/rec-1/delete", "/console/outbox/1/retry", "/console/logout"} {
		if a := b.post(path, url.Values{"csrf": {"x"}}); a.code != http.StatusUnauthorized {
			t.Errorf("POST %s: %d", path, a.code)
		}
	}
	if _, _, err := r.cat.Open(t.Context(), "", "rec-1"); err != nil {
		t.Fatalf("the recording went: %v", err)
	}
	// The old demo page sends to the console's, behind the sign-in.
	if a := b.get("/demo/"); a.code != http.StatusSeeOther || a.loc != demoPath {
		t.Errorf("/demo/: %d %s", a.code, a.loc)
	}
	if a := b.get("/console"); a.code != http.StatusSeeOther || a.loc != Prefix {
		t.Errorf("/console: %d %s", a.code, a.loc)
	}
	// The sign-in form's style sheet and script are served to anyone; nothing else is.
	if a := b.get("/console/static/console.js"); a.code != 200 || !strings.Contains(a.body, "dataset.src") {
		t.Errorf("console.js: %d", a.code)
	}
	if a := b.get("/console/static/"); a.code != 404 {
		t.Errorf("static listing: %d", a.code)
	}
}

// TestSignIn: apps with their app_id and access_token, the operator with the password; any
// other credential is refused, and so is a form without its CSRF token.
func TestSignIn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		password string // the operator's (--console-password)
		form     url.Values
		noForm   bool // post without having loaded the form (no cookie)
		want     int
		who      string
	}{
		{"app", testPassword, url.Values{"mode": {"app"}, "app_id": {"AP1"}, "access_token": {"token-one"}}, false, 303, "app AP1"},
		{"app, padded id", testPassword, url.Values{"mode": {"app"}, "app_id": {" AP1 "}, "access_token": {"token-one"}}, false, 303, "app AP1"},
		{"operator", testPassword, url.Values{"mode": {"operator"}, "password": {testPassword}}, false, 303, "operator"},
		{"another app's token", testPassword, url.Values{"mode": {"app"}, "app_id": {"AP1"}, "access_token": {"token-two"}}, false, 401, ""},
		{"unknown app", testPassword, url.Values{"mode": {"app"}, "app_id": {"AP9"}, "access_token": {"token-one"}}, false, 401, ""},
		{"no token", testPassword, url.Values{"mode": {"app"}, "app_id": {"AP1"}}, false, 401, ""},
		{"wrong password", testPassword, url.Values{"mode": {"operator"}, "password": {"guess"}}, false, 401, ""},
		{"token as password", testPassword, url.Values{"mode": {"operator"}, "password": {"token-one"}}, false, 401, ""},
		{"operator sign-in off", "", url.Values{"mode": {"operator"}, "password": {""}}, false, 401, ""},
		{"unknown mode", testPassword, url.Values{"mode": {"admin"}, "password": {testPassword}}, false, 401, ""},
		{"no CSRF token", testPassword, url.Values{"mode": {"operator"}, "password": {testPassword}, "csrf": {""}}, false, 403, ""},
		{"a forged CSRF token", testPassword, url.Values{"mode": {"operator"}, "password": {testPassword}, "csrf": {newKeyring([]byte("another secret of 32 bytes......")).csrf("n")}}, false, 403, ""},
		{"no form loaded", testPassword, url.Values{"mode": {"operator"}, "password": {testPassword}, "csrf": {"00"}}, true, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.password)
			b := r.browser()
			if !tc.noForm {
				b.get(loginPath)
			}
			a := b.post(loginPath, tc.form)
			if a.code != tc.want {
				t.Fatalf("POST login: %d, want %d\n%s", a.code, tc.want, a.body)
			}
			home := b.get(Prefix)
			if tc.who == "" {
				if home.code != http.StatusSeeOther {
					t.Fatalf("refused, yet the console answers %d", home.code)
				}
				if a.code == 401 && !strings.Contains(a.body, "Wrong") && !strings.Contains(a.body, "Operator sign-in is off") {
					t.Fatalf("no reason given:\n%s", a.body)
				}
				return
			}
			if home.code != http.StatusOK || !strings.Contains(home.body, `<span id="who">`+tc.who) {
				t.Fatalf("signed in, the console answers %d:\n%s", home.code, home.body)
			}
		})
	}
}

// TestSessionCookie: HttpOnly, SameSite=Strict, scoped to the console, Secure over https;
// a new value (nonce) at sign-in; signing out, rotating the app's token or changing the
// operator password ends the session.
func TestSessionCookie(t *testing.T) {
	r := newRig(t, testPassword)
	b := r.browser()
	form := b.get(loginPath)
	before := form.h.Get("Set-Cookie")
	a := b.post(loginPath, url.Values{"mode": {"app"}, "app_id": {"AP1"}, "access_token": {"token-one"}})
	ck := a.h.Get("Set-Cookie")
	for _, want := range []string{cookieName + "=v1.", "Path=/console/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %q", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") || ck == before || strings.Contains(ck, "token-one") {
		t.Errorf("cookie %q (form's %q)", ck, before)
	}
	if h := b.get(Prefix); h.code != 200 {
		t.Fatalf("signed in: %d", h.code)
	}
	r.rotate("AP1")
	if h := b.get(Prefix); h.code != http.StatusSeeOther {
		t.Fatalf("after the token was rotated: %d", h.code)
	}
	b.signIn("AP1", "token-one-rotated")
	b.get(Prefix)
	if h := b.post(Prefix+"logout", url.Values{}); h.code != http.StatusSeeOther || !strings.Contains(h.h.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign out: %d %q", h.code, h.h.Get("Set-Cookie"))
	}
	if h := b.get(Prefix); h.code != http.StatusSeeOther {
		t.Fatalf("after signing out: %d", h.code)
	}

	op := r.browser()
	op.signIn("", testPassword)
	r.c.cfg.Password = "a new password"
	if h := op.get(Prefix); h.code != http.StatusSeeOther {
		t.Fatalf("after the password changed: %d", h.code)
	}

	// Over https (the public URL), or on a TLS connection, the cookie is Secure.
	r.c.cfg.Secure = true
	sec := r.browser()
	if ck := sec.get(loginPath).h.Get("Set-Cookie"); !strings.Contains(ck, "Secure") {
		t.Errorf("cookie over https: %q", ck)
	}
}

// TestBruteForce: after five wrong passwords from one address, even the right one is refused
// for a while (429 with Retry-After), with the same answer whatever was tried.
func TestBruteForce(t *testing.T) {
	r := newRig(t, testPassword)
	b := r.browser()
	for i := range 5 {
		if a := b.login("", "guess"); a.code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, a.code)
		}
	}
	if a := b.login("", "guess"); a.code != http.StatusUnauthorized { // the sixth is counted, and locks
		t.Fatalf("guess 6: %d", a.code)
	}
	a := b.login("", testPassword)
	if a.code != http.StatusTooManyRequests || a.h.Get("Retry-After") != "1" || !strings.Contains(a.body, "Too many failed sign-ins") {
		t.Fatalf("right password while locked: %d %q", a.code, a.h.Get("Retry-After"))
	}
	if h := b.get(Prefix); h.code != http.StatusSeeOther {
		t.Fatal("signed in while locked out")
	}
	time.Sleep(1100 * time.Millisecond)
	b.signIn("", testPassword)
}

// TestCSRFOnActions: a signed-in session's POSTs need its own CSRF token, and a browser's
// Origin, when it sends one, must be the console's.
func TestCSRFOnActions(t *testing.T) {
	r := newRig(t, testPassword)
	r.addRecording("rec-1", "AP1", "S1", "mp3")
	b := r.browser()
	b.signIn("AP1", "token-one")
	other := r.browser()
	other.signIn("AP1", "token-one")
	b.get("/console/recordings")
	for _, tc := range []struct {
		name   string
		csrf   string
		origin string
	}{
		{"no token", "", ""},
		{"another session's token", other.csrf(), ""},
		{"another origin", b.csrf(), "https://evil.example"},
	} {
		req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/console/recordings/rec-1/delete", strings.NewReader(url.Values{"csrf": {tc.csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if a := b.do(req); a.code != http.StatusForbidden {
			t.Errorf("%s: %d", tc.name, a.code)
		}
	}
	if _, _, err := r.cat.Open(t.Context(), "", "rec-1"); err != nil {
		t.Fatalf("deleted without a valid token: %v", err)
	}
}

// TestAppsSeeTheirOwn: an app sees its own sessions, calls, recordings and notifications, and
// another app's are not found; the operator sees every app's.
func TestAppsSeeTheirOwn(t *testing.T) {
	r := newRig(t, testPassword)
	r.addSession("S1", "AP1")
	r.addSession("S2", "AP2")
	r.addRecording("rec-1", "AP1", "S1", "one")
	r.addRecording("rec-2", "AP2", "S2", "two")
	r.live.set(ivr.LiveCall{Session: "S1", AppID: "AP1", From: "+651", Started: time.Now()},
		ivr.LiveCall{Session: "S2", AppID: "AP2", From: "+652", Started: time.Now()})
	one, two, op := r.browser(), r.browser(), r.browser()
	one.signIn("AP1", "token-one")
	two.signIn("AP2", "token-two")
	op.signIn("", testPassword)

	if a := one.get("/console/sessions/S1"); a.code != 200 || !strings.Contains(a.body, "S1") {
		t.Fatalf("own session: %d", a.code)
	}
	if a := one.get("/console/sessions/S2"); a.code != 404 || strings.Contains(a.body, "6511111111") {
		t.Fatalf("another app's session: %d", a.code)
	}
	if a := op.get("/console/sessions/S2"); a.code != 200 {
		t.Fatalf("operator, any session: %d", a.code)
	}
	if a := one.get("/console/sessions"); !strings.Contains(a.body, "S1") || strings.Contains(a.body, "/sessions/S2") {
		t.Fatalf("sessions list of AP1:\n%s", a.body)
	}
	if a := op.get("/console/sessions"); !strings.Contains(a.body, "/sessions/S1") || !strings.Contains(a.body, "/sessions/S2") {
		t.Fatalf("operator's sessions list:\n%s", a.body)
	}
	if a := one.get("/console/recordings/rec-1/audio"); a.code != 200 || a.body != "one" || a.h.Get("Content-Type") != "audio/mpeg" {
		t.Fatalf("own recording: %d %q %q", a.code, a.body, a.h.Get("Content-Type"))
	}
	if a := one.get("/console/recordings/rec-2/audio"); a.code != 404 {
		t.Fatalf("another app's recording: %d", a.code)
	}
	if a := op.get("/console/recordings/rec-2/audio?download=1"); a.code != 200 || a.h.Get("Content-Disposition") != `attachment; filename=rec-2.mp3` {
		t.Fatalf("operator download: %d %q", a.code, a.h.Get("Content-Disposition"))
	}
	if a := one.get("/console/recordings"); !strings.Contains(a.body, "rec-1") || strings.Contains(a.body, "rec-2") {
		t.Fatalf("AP1's recordings:\n%s", a.body)
	}
	var live struct {
		Calls []liveRow `json:"calls"`
	}
	if one.json("/console/live.json", &live); len(live.Calls) != 1 || live.Calls[0].Session != "S1" {
		t.Fatalf("AP1's live calls: %+v", live.Calls)
	}
	if code := one.json("/console/live.json?app=AP2", &live); code != http.StatusForbidden {
		t.Fatalf("AP1 asking for AP2's calls: %d", code)
	}
	if op.json("/console/live.json", &live); len(live.Calls) != 2 {
		t.Fatalf("operator's live calls: %+v", live.Calls)
	}
	if a := one.get("/console/outbox"); !strings.Contains(a.body, "S1-2") || strings.Contains(a.body, "S2-") {
		t.Fatalf("AP1's outbox:\n%s", a.body)
	}
	// The demo is AP1's.
	if a := one.get(demoPath); a.code != 200 || !strings.Contains(a.body, "sip:100@127.0.0.1:5060") || !strings.Contains(a.body, "rec-1") {
		t.Fatalf("the demo app's demo page: %d", a.code)
	}
	if a := two.get(demoPath); a.code != http.StatusForbidden || strings.Contains(a.body, "rec-1") {
		t.Fatalf("another app's demo page: %d", a.code)
	}
	if a := op.get(demoPath); a.code != 200 || !strings.Contains(a.body, "rec-1") || strings.Contains(a.body, "rec-2") {
		t.Fatalf("operator's demo page: %d", a.code)
	}
	if strings.Contains(two.get(Prefix).body, `href="/console/demo"`) || !strings.Contains(one.get(Prefix).body, `href="/console/demo"`) {
		t.Fatal("the Demo link is shown to the wrong apps")
	}
}

// TestTimeline: a session's blocks with their parameters and status, its notifications with
// each attempt's HTTP status, and every step.
func TestTimeline(t *testing.T) {
	r := newRig(t, testPassword)
	r.addSession("S1", "AP1")
	b := r.browser()
	b.signIn("AP1", "token-one")
	a := b.get("/console/sessions/S1")
	for _, want := range []string{
		`data-block="monitor"`, `data-block="play"`, `data-block="hangup"`, "(forced)",
		"Hello &lt;b&gt;there&lt;/b&gt;",                         // parameters, escaped
		"done, call_state=ongoing", "recording rec-1", "running", // hangup: never done
		`data-delivery="S1-1"`, `data-code="503"`, `data-code="200"`, "HTTP 503", "HTTP 200", `data-delivery="S1-2" data-state="failed"`,
		`data-delivery="S1-3" data-state="pending"`, "not tried yet",
		`data-event="incoming"`, `data-event="down"`, "cause: hung up by the app",
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(a.body)
	}
}

// TestDeleteAndRetry: deleting a recording goes through the catalog (file and listing gone,
// its audio 404); retry now makes a failed notification pending and due.
func TestDeleteAndRetry(t *testing.T) {
	r := newRig(t, testPassword)
	r.addSession("S1", "AP1")
	r.addRecording("rec-1", "AP1", "S1", "one")
	one, two := r.browser(), r.browser()
	one.signIn("AP1", "token-one")
	two.signIn("AP2", "token-two")
	two.get("/console/recordings")
	if a := two.post("/console/recordings/rec-1/delete", url.Values{}); a.code != 404 {
		t.Fatalf("another app's delete: %d", a.code)
	}
	one.get("/console/recordings")
	if a := one.post("/console/recordings/rec-1/delete", url.Values{"return": {"/console/recordings?page=1"}}); a.code != 303 || a.loc != "/console/recordings?page=1" {
		t.Fatalf("delete: %d %s", a.code, a.loc)
	}
	if a := one.get("/console/recordings/rec-1/audio"); a.code != 404 {
		t.Fatalf("audio after delete: %d", a.code)
	}
	if a := one.get("/console/recordings"); strings.Contains(a.body, `id="rec-rec-1"`) {
		t.Fatal("deleted recording still listed")
	}
	if _, err := r.blobs.Open(t.Context(), "rec-1.mp3"); err == nil {
		t.Fatal("file still stored")
	}

	failed, _ := r.st.OutboxByDeliveryID("S1-2")
	one.get("/console/outbox")
	if a := two.post("/console/outbox/"+itoa(failed.ID)+"/retry", url.Values{"csrf": {two.csrf()}}); a.code != 404 {
		t.Fatalf("another app's retry: %d", a.code)
	}
	if a := one.post("/console/outbox/"+itoa(failed.ID)+"/retry", url.Values{}); a.code != 303 || a.loc != "/console/outbox" {
		t.Fatalf("retry: %d %s", a.code, a.loc)
	}
	if it, _ := r.st.OutboxByDeliveryID("S1-2"); it.State != store.OutboxPending || it.NextAt.After(time.Now()) {
		t.Fatalf("after retry: %+v", it)
	}
	one.get("/console/outbox")
	if a := one.post("/console/outbox/nope/retry", url.Values{}); a.code != 404 {
		t.Fatalf("retry of a bad id: %d", a.code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
