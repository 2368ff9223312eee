// Package openapitest checks HTTP traffic against ivrd's OpenAPI document with a real OpenAPI
// 3.1 validator (pb33f/libopenapi-validator): requests and answers of the API's paths, and
// notifications against the document's webhooks. The API's own tests and the end-to-end tests
// share it. It takes the document's bytes (it does not import internal/api, whose tests use it).
package openapitest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
)

// Doc is a loaded OpenAPI document. Its methods may be called from several goroutines.
type Doc struct {
	mu       sync.Mutex // the validator is used by one goroutine at a time
	v        validator.Validator
	sv       schema_validation.SchemaValidator
	raw      map[string]any
	webhooks map[string]webhook // by name (the notifications' ivr_block)
}

// webhook is what one webhook's request must be.
type webhook struct {
	body    *base.Schema
	headers []header
}

type header struct {
	name     string
	required bool
	schema   *base.Schema
}

// Load parses an OpenAPI document (JSON) and builds its validator.
func Load(doc []byte) (*Doc, error) {
	d := &Doc{sv: schema_validation.NewSchemaValidator(), webhooks: map[string]webhook{}}
	if err := json.Unmarshal(doc, &d.raw); err != nil {
		return nil, err
	}
	ld, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(ld, config.WithURLEncodedBodyValidation())
	if len(errs) > 0 {
		return nil, fmt.Errorf("validator: %w", errors.Join(errs...))
	}
	d.v = v
	m, err := ld.BuildV3Model()
	if err != nil {
		return nil, err
	}
	if m.Model.Webhooks != nil {
		for name, item := range m.Model.Webhooks.FromOldest() {
			if item.Post == nil || item.Post.RequestBody == nil {
				return nil, fmt.Errorf("webhook %s: no POST with a body", name)
			}
			media := item.Post.RequestBody.Content.GetOrZero("application/x-www-form-urlencoded")
			if media == nil || media.Schema == nil {
				return nil, fmt.Errorf("webhook %s: no application/x-www-form-urlencoded body", name)
			}
			w := webhook{body: media.Schema.Schema()}
			for _, p := range item.Post.Parameters {
				if p.In != "header" || p.Schema == nil {
					continue
				}
				req := p.Required != nil && *p.Required
				w.headers = append(w.headers, header{name: p.Name, required: req, schema: p.Schema.Schema()})
			}
			d.webhooks[name] = w
		}
	}
	return d, nil
}

// Raw is the document as decoded JSON. The caller must not modify it.
func (d *Doc) Raw() map[string]any { return d.raw }

// Webhooks are the names of the document's webhooks.
func (d *Doc) Webhooks() []string {
	var ns []string
	for n := range d.webhooks {
		ns = append(ns, n)
	}
	return ns
}

// Valid checks the document itself against the OpenAPI 3.1 schema.
func (d *Doc) Valid() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok, errs := d.v.ValidateDocument(); !ok {
		return fmt.Errorf("the OpenAPI document is not valid:%s", describe(errs))
	}
	return nil
}

// Response checks res, the answer to req, against the document: its HTTP status, content type
// and body. res.Body must be readable again (the validator reads it).
func (d *Doc) Response(req *http.Request, res *http.Response) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok, errs := d.v.ValidateHttpResponse(req, res); !ok {
		return fmt.Errorf("%s %s: the answer is not as the document says:%s", req.Method, req.URL.RequestURI(), describe(errs))
	}
	return nil
}

// Request checks req against the document: its path, method, parameters and body.
func (d *Doc) Request(req *http.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok, errs := d.v.ValidateHttpRequestSync(req); !ok {
		return fmt.Errorf("%s %s: the request is not as the document says:%s", req.Method, req.URL.RequestURI(), describe(errs))
	}
	return nil
}

// Notification checks a notification's form body and, when h is not nil, its headers against
// the document's webhook named by its ivr_block, and returns that name.
func (d *Doc) Notification(h http.Header, form url.Values) (string, error) {
	block := form.Get("ivr_block")
	w, ok := d.webhooks[block]
	if !ok {
		return block, fmt.Errorf("no webhook for the notification %v", form)
	}
	body := map[string]any{}
	for k, vs := range form {
		body[k] = vs[0]
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var problems []string
	if ok, errs := d.sv.ValidateSchemaObject(w.body, body); !ok {
		problems = append(problems, describe(errs))
	}
	for _, hd := range w.headers {
		if h == nil {
			break
		}
		v := h.Get(hd.name)
		switch {
		case v == "" && hd.required:
			problems = append(problems, "\n  no "+hd.name+" header")
		case v != "":
			if ok, errs := d.sv.ValidateSchemaObject(hd.schema, v); !ok {
				problems = append(problems, "\n  header "+hd.name+":"+describe(errs))
			}
		}
	}
	if len(problems) > 0 {
		return block, fmt.Errorf("the %s notification %v is not as its webhook says:%s", block, form, strings.Join(problems, ""))
	}
	return block, nil
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  %s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n    %s %s", se.FieldPath, se.Reason)
		}
	}
	return b.String()
}
