package health

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func get(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestReady(t *testing.T) {
	ok := func() string { return "" }
	cases := []struct {
		name   string
		checks []Check
		code   int
		body   string
	}{
		{"no checks", nil, 200, "ready\n"},
		{"all pass", []Check{{"store", ok}, {"sip", ok}}, 200, "ready\n"},
		{"one fails", []Check{{"store", ok}, {"sip", func() string { return "not listening" }}}, 503, "not ready\nsip: not listening\n"},
		{"two fail, in order", []Check{
			{"data directory", func() string { return "full: 0 bytes free" }},
			{"store", func() string { return Err(io.ErrClosedPipe) }},
			{"sip", ok},
		}, 503, "not ready\ndata directory: full: 0 bytes free\nstore: io: read/write on closed pipe\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code, body := get(t, Ready(c.checks...)); code != c.code || body != c.body {
				t.Errorf("%d %q, want %d %q", code, body, c.code, c.body)
			}
		})
	}
}

func TestLive(t *testing.T) {
	if code, body := get(t, http.HandlerFunc(Live)); code != 200 || body != "ok\n" {
		t.Errorf("%d %q", code, body)
	}
}
