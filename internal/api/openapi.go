package api

import (
	_ "embed"
	"net/http"
	"sort"
)

// OpenAPIPath is where the API's OpenAPI 3.1 document is served.
const OpenAPIPath = "/open/openapi.json"

// openAPIDoc describes the whole HTTP API: every block and extension endpoint (GET and POST,
// each parameter with its limits and default, each status it can answer, the answer's fields),
// the language table, recording downloads and the notifications (as webhooks). ivrd's own
// additions carry x-ivrd-extension: true. The tests check it against the OpenAPI 3.1 schema,
// against this package's routes and statuses, and every request and answer of the API's tests
// against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document (JSON). The caller must not modify it.
func OpenAPI() []byte { return openAPIDoc }

// Paths lists the paths the handler serves under /open/ivr/ (its blocks and the extensions
// it has the parts for), sorted, and the OpenAPI document's.
func (h *Handler) Paths() []string {
	var ps []string
	for stage, blocks := range stages {
		for b := range blocks {
			ps = append(ps, "/open/ivr/"+stage+"/"+b)
		}
	}
	for p, mk := range extensions {
		if mk(h) != nil {
			ps = append(ps, "/open/ivr/"+p)
		}
	}
	ps = append(ps, OpenAPIPath)
	sort.Strings(ps)
	return ps
}

// serveOpenAPI answers GET (and HEAD) of OpenAPIPath.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(openAPIDoc)
}
