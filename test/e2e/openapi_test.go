package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/api"
	"github.com/ivrd/ivrd/internal/api/openapitest"
	"github.com/ivrd/ivrd/internal/ivr"
)

// openAPIClient makes requests to ivrd and checks each request and answer against the
// OpenAPI document the server serves.
type openAPIClient struct {
	t    *testing.T
	base string
	doc  *openapitest.Doc
}

// get GETs path?params (the app's credentials added unless anonymous) and returns the
// answer's HTTP status and body once the answer (and, when it succeeded, the request) passed
// the document.
func (c *openAPIClient) get(path string, params url.Values, creds url.Values) (int, []byte) {
	c.t.Helper()
	q := url.Values{}
	for k, vs := range creds {
		q[k] = vs
	}
	for k, vs := range params {
		q[k] = vs
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if err := c.doc.Response(req, res); err != nil {
		c.t.Errorf("%v (answered HTTP %d %.300s)", err, res.StatusCode, body)
	}
	var answer struct{ Status string }
	if json.Unmarshal(body, &answer) == nil && answer.Status == ivr.StatusOK {
		if err := c.doc.Request(req); err != nil {
			c.t.Errorf("accepted, but: %v", err)
		}
	}
	return res.StatusCode, body
}

// call is get for a block or an extension: the answer's fields, after checking its status.
func (c *openAPIClient) call(path string, params, creds url.Values, want string) map[string]any {
	c.t.Helper()
	code, body := c.get(path, params, creds)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || code != http.StatusOK {
		c.t.Fatalf("%s: HTTP %d %s", path, code, body)
	}
	if m["status"] != want {
		c.t.Fatalf("%s %v: status %v, want %s", path, params, m["status"], want)
	}
	return m
}

// TestOpenAPIServed: the real server serves the embedded OpenAPI document at
// /open/openapi.json, a real validator accepts it, every path it describes is served by the
// real server (not 404), and a real call's traffic is as it says: the answers of Monitor, Play,
// Hangup, a refused block, recordings/list and recordings/get, the languages list, the
// recording download (and its refusal when tampered with), and every notification the app
// receives (body and headers, against the webhooks). The call is placed with `ivrd call`.
func TestOpenAPIServed(t *testing.T) {
	r := newRig(t)
	base := "http://" + r.p.http
	code, served := download(t, base+api.OpenAPIPath)
	if code != http.StatusOK || !bytes.Equal(served, api.OpenAPI()) {
		t.Fatalf("%s: HTTP %d, %d bytes, not the embedded document", api.OpenAPIPath, code, len(served))
	}
	doc, err := openapitest.Load(served)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Valid(); err != nil {
		t.Fatal(err)
	}
	c := &openAPIClient{t: t, base: base, doc: doc}
	creds := url.Values{"app_id": {r.a.id}, "access_token": {r.a.token}}

	// Every notification the app gets is checked against its webhook, headers included.
	var mu sync.Mutex
	var bad []string
	checked := map[string]int{}
	inspect := func(req *http.Request, body []byte) {
		form, err := url.ParseQuery(string(body))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			bad = append(bad, err.Error())
			return
		}
		block, err := doc.Notification(req.Header, form)
		if err != nil {
			bad = append(bad, err.Error())
			return
		}
		checked[block+" "+form.Get("call_state")]++
	}
	r.a.inspect.Store(&inspect)

	// Every path the document describes is served.
	var recURL string // a recording's URL, once there is one
	checkPaths := func() {
		for p := range doc.Raw()["paths"].(map[string]any) {
			switch {
			case strings.Contains(p, "{file}"):
				u, _ := url.Parse(recURL)
				if code, _ := c.get(u.Path, u.Query(), nil); code != http.StatusOK {
					t.Errorf("%s: HTTP %d", u.Path, code)
				}
			default:
				if code, _ := c.get(p, nil, nil); code == http.StatusNotFound {
					t.Errorf("%s: 404", p)
				}
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	target := "sip:" + strings.TrimPrefix(number, "+") + "@" + r.p.sip
	run := runCall(ctx, target, "--from", callerNum, "--duration", "30s")
	sid := r.answered(callerNum)
	c.call("/open/ivr/middle/monitor", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}, "tag": {"m1"}}, creds, ivr.StatusOK)
	expect(t, r.a.next(10*time.Second), "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ongoing"})
	c.call("/open/ivr/middle/play", url.Values{"session": {sid}, "msg": {"Hello."}, "notify_url": {r.a.url("/play")}}, creds, ivr.StatusOK)
	expect(t, r.a.next(15*time.Second), "/play", map[string]string{"ivr_block": "play", "call_state": "ongoing"})
	c.call("/open/ivr/middle/play", url.Values{"session": {"S-nope"}}, creds, ivr.StatusInvalidSession)
	c.call("/open/ivr/middle/play", url.Values{"session": {sid}}, url.Values{"app_id": {r.a.id}, "access_token": {"wrong"}}, ivr.StatusInvalidAccessToken)
	c.call("/open/ivr/end/hangup", url.Values{"session": {sid}, "notify_url": {r.a.url("/hangup")}}, creds, ivr.StatusOK)
	notes := r.a.nextTwo(20 * time.Second)
	mon := notes["/monitor"]
	expect(t, mon, "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ended", "monitor_url": "*", "tag": "m1"})
	if rc := run.wait(t, 20*time.Second); rc != 0 {
		t.Fatalf("ivrd call exited %d: %s %s", rc, run.stdout.String(), run.stderr.String())
	}

	list := c.call("/open/ivr/recordings/list", url.Values{"session": {sid}}, creds, ivr.StatusOK)
	recs, _ := list["entries"].([]any)
	if len(recs) != 1 {
		t.Fatalf("recordings/list: %v", list)
	}
	id, _ := recs[0].(map[string]any)["id"].(string)
	got := c.call("/open/ivr/recordings/get", url.Values{"id": {id}}, creds, ivr.StatusOK)
	c.call("/open/ivr/recordings/get", url.Values{"id": {"rec-0000"}}, creds, "error_recording_not_found")
	recURL, _ = got["url"].(string)
	if recURL == "" {
		t.Fatalf("recordings/get: %v", got)
	}
	// The download and the monitor_url are served as the document says; a tampered one is refused.
	u, _ := url.Parse(mon.params.Get("monitor_url"))
	if code, body := c.get(u.Path, u.Query(), nil); code != http.StatusOK || len(body) == 0 {
		t.Errorf("monitor_url: HTTP %d, %d bytes", code, len(body))
	}
	q := u.Query()
	q.Set("Signature", "x"+q.Get("Signature"))
	if code, _ := c.get(u.Path, q, nil); code != http.StatusForbidden {
		t.Errorf("tampered monitor_url: HTTP %d, want 403", code)
	}
	checkPaths()

	mu.Lock()
	defer mu.Unlock()
	for _, b := range bad {
		t.Error(b)
	}
	for _, want := range []string{"answer ringing", "monitor ongoing", "play ongoing", "hangup ended", "monitor ended"} {
		if checked[want] == 0 {
			t.Errorf("no %q notification was checked against its webhook (%v)", want, checked)
		}
	}
	t.Logf("notifications checked against the webhooks: %v", checked)
}
