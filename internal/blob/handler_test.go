package blob

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// server serves a store holding rec-1.mp3 (256 known bytes) and returns a signer for its URL.
func server(t *testing.T) (*httptest.Server, Signer, []byte) {
	t.Helper()
	l := &Local{Dir: filepath.Join(t.TempDir(), "recordings")}
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i)
	}
	if err := l.PutFile("rec-1.mp3", writeFile(t, t.TempDir(), "part", data)); err != nil {
		t.Fatal(err)
	}
	s := Signer{Secret: bytes.Repeat([]byte{7}, SecretSize), TTL: time.Minute}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.BaseURL = srv.URL
	mux.Handle(PathPrefix, Handler(l, s, nil)) // mounted as ivrd mounts it
	return srv, s, data
}

func do(t *testing.T, method, raw string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHandlerServes(t *testing.T) {
	_, s, data := server(t)
	raw := s.URL("rec-1.mp3", time.Now())

	resp, body := do(t, http.MethodGet, raw, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != "audio/mpeg" {
		t.Fatalf("GET: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	resp, body = do(t, http.MethodGet, raw, map[string]string{"Range": "bytes=10-19"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[10:20]) ||
		resp.Header.Get("Content-Range") != "bytes 10-19/256" {
		t.Fatalf("Range: %d %q %v", resp.StatusCode, resp.Header.Get("Content-Range"), body)
	}
	resp, body = do(t, http.MethodHead, raw, nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "256" {
		t.Fatalf("HEAD: %d len %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	resp, _ = do(t, http.MethodGet, raw, map[string]string{"Range": "bytes=999-"})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
	}
	resp, _ = do(t, http.MethodPost, raw, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

func TestHandlerRejects(t *testing.T) {
	srv, s, _ := server(t)
	good, _ := url.Parse(s.URL("rec-1.mp3", time.Now()))
	q := good.Query()
	exp, sig := q.Get("Expires"), q.Get("Signature")
	base := srv.URL + PathPrefix
	expired := s.URL("rec-1.mp3", time.Now().Add(-2*time.Minute))
	for name, tc := range map[string]struct {
		url  string
		want int
	}{
		"tampered signature": {base + "rec-1.mp3?Expires=" + exp + "&Signature=" + strings.Repeat("0", 64), 403},
		"tampered expires":   {base + "rec-1.mp3?Expires=" + exp + "9&Signature=" + sig, 403},
		"tampered key":       {base + "rec-2.mp3?Expires=" + exp + "&Signature=" + sig, 403},
		"expired":            {expired, 403},
		"no params":          {base + "rec-1.mp3", 403},
		"no signature":       {base + "rec-1.mp3?Expires=" + exp, 403},
		"doubled signature":  {base + "rec-1.mp3?Expires=" + exp + "&Signature=" + sig + "&Signature=" + sig, 403},
		"bad query":          {base + "rec-1.mp3?Expires=%zz&Signature=" + sig, 403},
		"encoded slash":      {base + "..%2Frec-1.mp3?Expires=" + exp + "&Signature=" + sig, 403},
		"empty key":          {base + "?Expires=" + exp + "&Signature=" + sig, 403},
		"signed but missing": {s.URL("rec-9.mp3", time.Now()), 404},
	} {
		resp, body := do(t, http.MethodGet, tc.url, nil)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %q; want %d", name, resp.StatusCode, body, tc.want)
		}
		if bytes.Contains(body, []byte{0, 1, 2, 3}) {
			t.Errorf("%s: leaked file bytes", name)
		}
	}
}

// FuzzHandler feeds arbitrary paths and queries to the handler: never a 5xx, never file bytes
// without the exact signature.
func FuzzHandler(f *testing.F) {
	l := &Local{Dir: f.TempDir()}
	if err := l.PutFile("rec-1.mp3", writeFile(f, f.TempDir(), "p", []byte("secret-bytes"))); err != nil {
		f.Fatal(err)
	}
	s := Signer{Secret: bytes.Repeat([]byte{1}, SecretSize), BaseURL: "http://x"}
	h := Handler(l, s, nil)
	good, _ := url.Parse(s.URL("rec-1.mp3", time.Now()))
	f.Add(good.EscapedPath(), good.RawQuery)
	f.Add("/recordings/rec-1.mp3", "Expires=1&Signature=00")
	f.Add("/recordings/../x", "Expires=%zz")
	f.Add("/other", "")
	f.Fuzz(func(t *testing.T, path, query string) {
		u := &url.URL{Path: path, RawQuery: query}
		req := httptest.NewRequest(http.MethodGet, "http://x/", nil)
		req.URL = u
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s?%s: %d", path, query, rec.Code)
		}
		if rec.Code == 200 || rec.Code == 206 {
			key := strings.TrimPrefix(path, PathPrefix)
			q, _ := url.ParseQuery(query)
			if key != "rec-1.mp3" || !s.Verify(key, q.Get("Expires"), q.Get("Signature"), time.Now()) {
				t.Fatalf("served %s?%s", path, query)
			}
		}
	})
}
