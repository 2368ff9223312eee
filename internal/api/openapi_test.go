package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ivrd/ivrd/internal/api/openapitest"
	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/notify"
)

// The OpenAPI document is checked three ways: against the OpenAPI 3.1 schema (a real
// validator, pb33f/libopenapi-validator), against the code (routes, statuses, fields), and by
// validating every request and answer the API tests make (the fixtures' servers go through
// validating).

var openAPI struct {
	once sync.Once
	doc  *openapitest.Doc
	err  error
}

// openAPIDoc is the embedded document, loaded once.
func openAPIValidator(t testing.TB) (*openapitest.Doc, map[string]any) {
	t.Helper()
	openAPI.once.Do(func() { openAPI.doc, openAPI.err = openapitest.Load(OpenAPI()) })
	if openAPI.err != nil {
		t.Fatal(openAPI.err)
	}
	return openAPI.doc, openAPI.doc.Raw()
}

// TestOpenAPIDocument: the document is valid OpenAPI 3.1.
func TestOpenAPIDocument(t *testing.T) {
	v, doc := openAPIValidator(t)
	if err := v.Valid(); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %v", doc["openapi"])
	}
	// Every status an endpoint lists is one of components.schemas.Status, described there.
	known := map[string]bool{}
	for _, c := range doc["components"].(map[string]any)["schemas"].(map[string]any)["Status"].(map[string]any)["oneOf"].([]any) {
		c := c.(map[string]any)
		if d, _ := c["description"].(string); d == "" {
			t.Errorf("status %v has no description", c["const"])
		}
		known[c["const"].(string)] = true
	}
	for path, item := range doc["paths"].(map[string]any) {
		for m, op := range item.(map[string]any) {
			if !strings.HasPrefix(path, "/open/ivr/") || path == "/open/ivr/languages" {
				continue
			}
			for _, st := range statusEnum(op) {
				if !known[st.(string)] {
					t.Errorf("%s %s lists %v, which components.schemas.Status does not describe", m, path, st)
				}
			}
		}
	}
}

// TestOpenAPINames: the notification headers the document names are those internal/notify
// sends.
func TestOpenAPINames(t *testing.T) {
	_, doc := openAPIValidator(t)
	params := doc["components"].(map[string]any)["parameters"].(map[string]any)
	for ref, want := range map[string]string{"Signature": notify.HeaderSignature, "DeliveryID": notify.HeaderDeliveryID, "Attempt": notify.HeaderAttempt} {
		p, _ := params[ref].(map[string]any)
		if p == nil || p["name"] != want || p["in"] != "header" {
			t.Errorf("components.parameters.%s: %v, want the header %s", ref, p, want)
		}
	}
}

// TestOpenAPIValidatorCatches: the checks the other tests rely on fail on answers and
// notifications that are not as the document says.
func TestOpenAPIValidatorCatches(t *testing.T) {
	v, _ := openAPIValidator(t)
	answer := func(path, body string) error {
		req := httptest.NewRequest(http.MethodGet, path+"?app_id=A1&access_token=tok1&session=S1", nil)
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteString(body)
		return v.Response(req, rec.Result())
	}
	for _, tc := range []struct {
		path, body string
		ok         bool
	}{
		{"/open/ivr/middle/play", `{"status":"success_ok"}`, true},
		{"/open/ivr/middle/play", `{"status":"error_session_not_ready"}`, true},
		{"/open/ivr/middle/play", `{"status":"error_monitor_in_progress"}`, false}, // not Play's
		{"/open/ivr/middle/play", `{"status":"error_no_such_thing"}`, false},
		{"/open/ivr/middle/play", `{"status":"success_ok","txn_ref":"T1"}`, false}, // Play answers no txn_ref
		{"/open/ivr/middle/play", `{}`, false},
		{"/open/ivr/start/dial", `{"status":"success_ok","txn_ref":"T1","session":"S1"}`, true},
		{"/open/ivr/recordings/list", `{"status":"success_ok","recordings":"not a list"}`, false},
	} {
		if err := answer(tc.path, tc.body); (err == nil) != tc.ok {
			t.Errorf("%s %s: %v, want ok=%v", tc.path, tc.body, err, tc.ok)
		}
	}
	if err := v.Request(httptest.NewRequest(http.MethodGet, "/open/ivr/middle/gather?app_id=A1&access_token=tok1&session=S1&notify_url=http://a.test/&max_digits=300", nil)); err == nil {
		t.Error("max_digits=300 was taken")
	}
	sig := http.Header{}
	sig.Set(notify.HeaderSignature, strings.Repeat("ab", 32))
	sig.Set(notify.HeaderDeliveryID, "S1-1")
	sig.Set(notify.HeaderAttempt, "1")
	ended := url.Values{"ivr_block": {"hangup"}, "session": {"S1"}, "txn_ref": {"T1"}, "call_state": {"ended"},
		"date": {"2026-01-02 03:04:05"}, "duration": {"1"}, "currency": {"SGD"}, "rate": {"0.00"}, "debit": {"0.00"}}
	if _, err := v.Notification(sig, ended); err != nil {
		t.Errorf("a good hangup notification: %v", err)
	}
	for name, bad := range map[string]func(url.Values, http.Header){
		"no session":       func(p url.Values, _ http.Header) { p.Del("session") },
		"ended, no debit":  func(p url.Values, _ http.Header) { p.Del("debit") },
		"unknown block":    func(p url.Values, _ http.Header) { p.Set("ivr_block", "dance") },
		"bad call_state":   func(p url.Values, _ http.Header) { p.Set("call_state", "ringing") },
		"no signature":     func(_ url.Values, h http.Header) { h.Del(notify.HeaderSignature) },
		"upper-case hex":   func(_ url.Values, h http.Header) { h.Set(notify.HeaderSignature, strings.Repeat("AB", 32)) },
		"attempt 0":        func(_ url.Values, h http.Header) { h.Set(notify.HeaderAttempt, "0") },
		"no delivery id":   func(_ url.Values, h http.Header) { h.Del(notify.HeaderDeliveryID) },
		"duration minutes": func(p url.Values, _ http.Header) { p.Set("duration", "1.5") },
	} {
		p, h := url.Values{}, sig.Clone()
		for k, vs := range ended {
			p[k] = slices.Clone(vs)
		}
		bad(p, h)
		if _, err := v.Notification(h, p); err == nil {
			t.Errorf("%s: taken", name)
		}
	}
}

// docPaths are the document's paths.
func docPaths(doc map[string]any) []string {
	var ps []string
	for p := range doc["paths"].(map[string]any) {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Paths the document describes that other parts of the server serve (internal/server mounts
// them beside the API).
var servedElsewhere = []string{"/open/ivr/languages", blob.PathPrefix + "{file}"}

// TestOpenAPIRoutes: the document describes exactly the paths the API serves: every one it
// names is served (not 404), every one served is named; extensions, and only they, are marked
// x-ivrd-extension; every block and extension takes GET and POST.
func TestOpenAPIRoutes(t *testing.T) {
	_, doc := openAPIValidator(t)
	f := newExtFixture(t)
	h := &Handler{Monitors: f.e, Recordings: f.catalog}
	served := append(h.Paths(), servedElsewhere...)
	sort.Strings(served)
	if got := docPaths(doc); !slices.Equal(got, served) {
		t.Fatalf("the document's paths:\n%v\nthe served ones:\n%v", got, served)
	}
	for _, p := range h.Paths() {
		if httpGet(t, f.srv.URL+p) == http.StatusNotFound {
			t.Errorf("%s: 404", p)
		}
	}
	// Every combination of the document's stages and names that is not a path is not served.
	stagesSeen, names := map[string]bool{}, map[string]bool{}
	for _, p := range h.Paths() {
		if rest, ok := strings.CutPrefix(p, "/open/ivr/"); ok {
			s, n, _ := strings.Cut(rest, "/")
			stagesSeen[s], names[n] = true, true
		}
	}
	for s := range stagesSeen {
		for n := range names {
			p := "/open/ivr/" + s + "/" + n
			if slices.Contains(h.Paths(), p) {
				continue
			}
			if code := httpGet(t, f.srv.URL+p+"?app_id=A1&access_token=tok1"); code != http.StatusNotFound {
				t.Errorf("%s is served (HTTP %d) but not in the document", p, code)
			}
		}
	}
	for p, item := range doc["paths"].(map[string]any) {
		ops := item.(map[string]any)
		_, isExt := extensions[strings.TrimPrefix(p, "/open/ivr/")]
		isBlock := false
		for stage, bs := range stages {
			for b := range bs {
				isBlock = isBlock || p == "/open/ivr/"+stage+"/"+b
			}
		}
		isExt = isExt || p == OpenAPIPath || p == "/open/ivr/languages"
		if isBlock || (isExt && strings.HasPrefix(p, "/open/ivr/") && p != "/open/ivr/languages") {
			if ops["get"] == nil || ops["post"] == nil {
				t.Errorf("%s: GET and POST are both taken", p)
			}
		}
		for m, op := range ops {
			marked, _ := op.(map[string]any)["x-ivrd-extension"].(bool)
			if marked != isExt {
				t.Errorf("%s %s: x-ivrd-extension %v, want %v", m, p, marked, isExt)
			}
		}
	}
	// The document is served as it is embedded.
	code, body := getBody(t, f.srv.URL+OpenAPIPath)
	if code != 200 || !bytes.Equal(body, OpenAPI()) {
		t.Fatalf("%s: HTTP %d, %d bytes", OpenAPIPath, code, len(body))
	}
}

// seen records the statuses the API answered, by path, through validating.
var seen struct {
	sync.Mutex
	by map[string]map[string]bool
}

func see(path, status string) {
	seen.Lock()
	defer seen.Unlock()
	if seen.by == nil {
		seen.by = map[string]map[string]bool{}
	}
	if seen.by[path] == nil {
		seen.by[path] = map[string]bool{}
	}
	seen.by[path][status] = true
}

// validating wraps an API handler so that every GET and POST to a path of the document is
// checked against it: the answer always (its status must be one the document lists for the
// endpoint, its fields those it describes), the request when it was accepted (success_ok: a
// request the server takes must be one the document allows). Failures fail t. The statuses
// answered (any method) are recorded in seen. Requests between nodes (testForwarded) are left
// out: they are not the public API.
func validating(t *testing.T, next http.Handler) http.Handler {
	v, _ := openAPIValidator(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/open/") || r.Header.Get(testForwarded) != "" {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		if rec.Code == http.StatusNotFound {
			return // not an endpoint (TestOpenAPIRoutes checks the document has none of these)
		}
		var answer struct{ Status string }
		_ = json.Unmarshal(rec.Body.Bytes(), &answer)
		if answer.Status != "" {
			see(r.URL.Path, answer.Status)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			return // the document describes GET and POST; the others answer error_invalid_http_method
		}
		req := r.Clone(r.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		if err := v.Response(req, rec.Result()); err != nil {
			t.Errorf("%v (%s, answered %s)", err, body, rec.Body.Bytes())
		}
		if answer.Status == ivr.StatusOK {
			req.Body = io.NopCloser(bytes.NewReader(body))
			if err := v.Request(req); err != nil {
				t.Errorf("accepted, but: %v (%s)", err, body)
			}
		}
	})
}

// commonStatuses are answered by the shared checks every endpoint goes through (method,
// decoding, credentials, rate) before its own: reached on one endpoint, they are reached on
// every one.
var commonStatuses = []string{ivr.StatusOK, ivr.StatusInvalidHTTPMethod, ivr.StatusMalformedParams, ivr.Missing("app_id"),
	ivr.Missing("access_token"), ivr.StatusInvalidAppID, ivr.StatusInvalidAccessToken, ivr.StatusInternal, ivr.StatusRateLimitExceeded}

// engineOnly are statuses the contract tests reach by calling the engine directly (they need
// a server set up otherwise: a call limit, no trunk), by endpoint.
var engineOnly = map[string][]string{
	"/open/ivr/start/dial":   {ivr.StatusCallLimitReached, ivr.StatusDestNotSupported},
	"/open/ivr/end/transfer": {ivr.StatusDestNotSupported},
}

// TestOpenAPIStatuses: each endpoint's statuses in the document are exactly those the API
// answers it: the contract tests (which reach every status of every endpoint) run through
// validating, which fails on an answer whose status the document does not list for its
// endpoint; then every status the document lists must have been answered there.
func TestOpenAPIStatuses(t *testing.T) {
	seen.Lock()
	seen.by = nil
	seen.Unlock()
	webhooks.Lock()
	webhooks.errs, webhooks.checked = nil, map[string]int{}
	webhooks.Unlock()
	t.Run("blocks", TestContractEveryStatus)
	t.Run("extensions", TestContractExtensions)
	t.Run("rate", TestExtensionsRateLimit)
	if t.Failed() {
		return
	}
	// The notifications the engine sent meanwhile are as the webhooks describe them.
	webhooks.Lock()
	for _, e := range webhooks.errs {
		t.Errorf("a notification is not as its webhook says: %s", e)
	}
	webhooks.Unlock()
	_, doc := openAPIValidator(t)
	common := map[string]bool{}
	seen.Lock()
	defer seen.Unlock()
	for _, st := range commonStatuses {
		for _, by := range seen.by {
			common[st] = common[st] || by[st]
		}
	}
	for path, item := range doc["paths"].(map[string]any) {
		if !strings.HasPrefix(path, "/open/ivr/") || path == "/open/ivr/languages" {
			continue
		}
		for m, op := range item.(map[string]any) {
			for _, st := range statusEnum(op) {
				s := st.(string)
				if !seen.by[path][s] && !common[s] && !slices.Contains(engineOnly[path], s) {
					t.Errorf("%s %s: the document lists %s, which the tests never got there", m, path, s)
				}
			}
		}
	}
}

// webhooks keeps what checkNotification found: the notifications checked (by ivr_block and
// call_state) and the failures, for TestOpenAPIStatuses and TestOpenAPIWebhooks.
var webhooks struct {
	sync.Mutex
	checked map[string]int
	errs    []string
}

// checkNotification validates a notification body the engine made against its webhook.
func checkNotification(p url.Values) {
	openAPI.once.Do(func() { openAPI.doc, openAPI.err = openapitest.Load(OpenAPI()) })
	webhooks.Lock()
	defer webhooks.Unlock()
	if webhooks.checked == nil {
		webhooks.checked = map[string]int{}
	}
	if openAPI.err != nil {
		webhooks.errs = append(webhooks.errs, openAPI.err.Error())
		return
	}
	block, err := openAPI.doc.Notification(nil, p)
	if err != nil {
		webhooks.errs = append(webhooks.errs, err.Error())
		return
	}
	webhooks.checked[block+" "+p.Get("call_state")]++
}

// TestOpenAPIWebhooks: a call through every block that notifies: each notification the engine
// sends is as the document's webhook for it says (checked by the fixture's notifier).
func TestOpenAPIWebhooks(t *testing.T) {
	webhooks.Lock()
	webhooks.errs, webhooks.checked = nil, map[string]int{}
	webhooks.Unlock()
	c := newContract(t)
	cred := "app_id=A1&access_token=tok1"
	sid, _ := c.session(t)
	await := func(block string) {
		t.Helper()
		waitFor(t, c.fixture, sid, block)
	}
	for _, step := range []struct{ path, params, block string }{
		{"middle/monitor", "monitor_notify_url=http://app.test/mon&tag=t1", "monitor"},
		{"middle/play", "msg=hi&tag=t2", "play"},
		{"middle/gather", "timeout=1&max_digits=2", "gather"},
		{"middle/record", "max_duration=1&channels=dual", "record"},
		{"middle/hold", "", ""},
		{"middle/unhold", "", "unhold"},
		{"end/transfer", "dest=%2B6590000002&on_failure=continue", "transfer"},
		{"end/hangup", "", "hangup"},
	} {
		body := cred + "&session=" + sid + "&notify_url=http://app.test/n"
		if step.params != "" {
			body += "&" + step.params
		}
		if st := c.post(t, "/open/ivr/"+step.path, body); st != ivr.StatusOK {
			t.Fatalf("%s: %s", step.path, st)
		}
		if step.block != "" {
			await(step.block)
		}
	}
	await("monitor") // the recording's, once the call has ended
	dial := c.answer(t, "/open/ivr/start/dial", cred+"&dest=%2B6590000001&notify_url=http://app.test/n&msg=hi")
	if dial["status"] != ivr.StatusOK {
		t.Fatal(dial["status"])
	}
	dialed, _ := dial["session"].(string)
	waitFor(t, c.fixture, dialed, "dial")
	rung, call := c.session(t) // a caller who hangs up before the first block
	call.Hangup()
	waitFor(t, c.fixture, rung, "answer")
	webhooks.Lock()
	defer webhooks.Unlock()
	for _, e := range webhooks.errs {
		t.Errorf("a notification is not as its webhook says: %s", e)
	}
	for _, want := range []string{"answer ringing", "answer ended", "monitor ongoing", "play ongoing", "gather ongoing", "record ongoing", "unhold ongoing",
		"transfer ongoing", "hangup ended", "monitor ended", "dial ongoing"} {
		if webhooks.checked[want] == 0 {
			t.Errorf("no %q notification was checked (%v)", want, webhooks.checked)
		}
	}
	t.Logf("notifications checked against the webhooks: %v", webhooks.checked)
}

// statusEnum is the status enum of an operation's answer (a block's or an extension's).
func statusEnum(op any) []any {
	content := op.(map[string]any)["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)
	schema := content["application/json"].(map[string]any)["schema"].(map[string]any)
	return schema["properties"].(map[string]any)["status"].(map[string]any)["enum"].([]any)
}
