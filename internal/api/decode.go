package api

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/ivrd/ivrd/internal/ivr"
)

// MaxBody bounds a request body; the longest legal request is far below it.
const MaxBody = 1 << 20

var errMalformed = errors.New("malformed parameters")

// decode reads a request's parameters: the query string, and for POST a form body as well.
// Every key and value must decode (percent-escapes, '+' as space) to valid UTF-8. An empty value
// counts as absent; for a repeated key the first non-empty value wins.
func decode(r *http.Request) (ivr.Params, error) {
	p := ivr.Params{}
	if err := addQuery(p, r.URL.RawQuery); err != nil {
		return nil, err
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return p, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "" && ct != "application/x-www-form-urlencoded" {
		// Some old clients post form bodies with a wrong or missing type: accept the body as a
		// form when it parses as one, otherwise it has no parameters.
		if ct == "multipart/form-data" {
			return p, decodeMultipart(r, p)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil || len(body) > MaxBody {
		return nil, errMalformed
	}
	if err := addQuery(p, string(body)); err != nil {
		return nil, err
	}
	return p, nil
}

// readBody reads a request's body (at most MaxBody) and puts it back for decode.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil || len(body) > MaxBody {
		return nil, errMalformed
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// addQuery decodes one x-www-form-urlencoded string into p (values already in p win).
func addQuery(p ivr.Params, q string) error {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return errMalformed
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return errMalformed
		}
		if !utf8.ValidString(key) || !utf8.ValidString(val) {
			return errMalformed
		}
		if val == "" {
			continue
		}
		if _, ok := p[key]; !ok {
			p[key] = val
		}
	}
	return nil
}

func decodeMultipart(r *http.Request, p ivr.Params) error {
	r.Body = http.MaxBytesReader(nil, r.Body, MaxBody)
	if err := r.ParseMultipartForm(MaxBody); err != nil {
		return errMalformed
	}
	for k, vs := range r.MultipartForm.Value {
		for _, v := range vs {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return errMalformed
			}
			if _, ok := p[k]; !ok && v != "" {
				p[k] = v
			}
		}
	}
	return nil
}
