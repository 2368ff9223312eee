package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	vErrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"

	"github.com/ivrd/ivrd/internal/ivr"
)

// The OpenAPI document is checked three ways: against the OpenAPI 3.1 schema (a real
// validator, pb33f/libopenapi-validator), against the code (routes, statuses, fields), and by
// validating every request and answer the API tests make (the fixtures' servers go through
// validating).

var openAPI struct {
	once sync.Once
	mu   sync.Mutex // the validator is used from one goroutine at a time
	v    validator.Validator
	doc  map[string]any
	err  error
}

// openAPIValidator is the validator of the embedded document.
func openAPIValidator(t testing.TB) (validator.Validator, map[string]any) {
	t.Helper()
	openAPI.once.Do(func() {
		doc, err := libopenapi.NewDocument(OpenAPI())
		if err != nil {
			openAPI.err = err
			return
		}
		v, errs := validator.NewValidator(doc, config.WithURLEncodedBodyValidation())
		if len(errs) > 0 {
			openAPI.err = fmt.Errorf("validator: %v", errs)
			return
		}
		openAPI.v = v
		openAPI.err = json.Unmarshal(OpenAPI(), &openAPI.doc)
	})
	if openAPI.err != nil {
		t.Fatal(openAPI.err)
	}
	return openAPI.v, openAPI.doc
}

func describe(errs []*vErrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  %s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n    %s %s", se.FieldPath, se.Reason)
		}
	}
	return b.String()
}

// TestOpenAPIDocument: the document is valid OpenAPI 3.1.
func TestOpenAPIDocument(t *testing.T) {
	v, doc := openAPIValidator(t)
	openAPI.mu.Lock()
	ok, errs := v.ValidateDocument()
	openAPI.mu.Unlock()
	if !ok {
		t.Fatalf("the OpenAPI document is not valid:%s", describe(errs))
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
var servedElsewhere = []string{"/open/ivr/languages", "/recordings/{file}"}

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
		res, err := http.Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
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

func getBody(t *testing.T, u string) (int, []byte) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
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
// answered (any method) are recorded in seen.
func validating(t *testing.T, next http.Handler) http.Handler {
	v, _ := openAPIValidator(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/open/") {
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
		res := rec.Result()
		openAPI.mu.Lock()
		defer openAPI.mu.Unlock()
		if ok, errs := v.ValidateHttpResponse(req, res); !ok {
			t.Errorf("%s %s?%s %s: the answer %s is not as the document says:%s", r.Method, r.URL.Path, r.URL.RawQuery, body, rec.Body.Bytes(), describe(errs))
		}
		if answer.Status == ivr.StatusOK {
			req.Body = io.NopCloser(bytes.NewReader(body))
			if ok, errs := v.ValidateHttpRequestSync(req); !ok {
				t.Errorf("%s %s?%s %s was accepted but the document does not allow it:%s", r.Method, r.URL.Path, r.URL.RawQuery, body, describe(errs))
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

// webhooks checks notification bodies against the document's webhooks (by ivr_block).
var webhooks struct {
	sync.Mutex
	schemas map[string]*base.Schema
	sv      schema_validation.SchemaValidator
	checked map[string]int
	errs    []string
}

// checkNotification validates a notification body the engine made against its webhook's
// schema; failures are kept for TestOpenAPIStatuses.
func checkNotification(p url.Values) {
	webhooks.Lock()
	defer webhooks.Unlock()
	if webhooks.schemas == nil {
		doc, err := libopenapi.NewDocument(OpenAPI())
		if err != nil {
			panic(err)
		}
		m, err := doc.BuildV3Model()
		if err != nil {
			panic(err)
		}
		webhooks.schemas = map[string]*base.Schema{}
		for name, item := range m.Model.Webhooks.FromOldest() {
			media := item.Post.RequestBody.Content.GetOrZero("application/x-www-form-urlencoded")
			webhooks.schemas[name] = media.Schema.Schema()
		}
		webhooks.sv = schema_validation.NewSchemaValidator()
		webhooks.checked = map[string]int{}
	}
	block := p.Get("ivr_block")
	s := webhooks.schemas[block]
	if s == nil {
		webhooks.errs = append(webhooks.errs, fmt.Sprintf("no webhook for the notification %v", p))
		return
	}
	body := map[string]any{}
	for k, vs := range p {
		body[k] = vs[0]
	}
	if ok, errs := webhooks.sv.ValidateSchemaObject(s, body); !ok {
		webhooks.errs = append(webhooks.errs, fmt.Sprintf("%v:%s", p, describe(errs)))
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
		deadline := time.After(10 * time.Second)
		for {
			select {
			case p := <-c.n.ch:
				if p.Get("ivr_block") == block {
					return
				}
			case <-deadline:
				t.Fatalf("no %s notification", block)
			}
		}
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
	if st := c.post(t, "/open/ivr/start/dial", cred+"&dest=%2B6590000001&notify_url=http://app.test/n&msg=hi"); st != ivr.StatusOK {
		t.Fatal(st)
	}
	await("dial")
	webhooks.Lock()
	defer webhooks.Unlock()
	for _, e := range webhooks.errs {
		t.Errorf("a notification is not as its webhook says: %s", e)
	}
	for _, want := range []string{"answer ringing", "monitor ongoing", "play ongoing", "gather ongoing", "record ongoing", "unhold ongoing",
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
