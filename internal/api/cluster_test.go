package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ivrd/ivrd/internal/ivr"
)

// testForwarded is the header that makes fakeCluster take a request as forwarded by another
// node ("bad": with a failed signature). Requests between nodes are not the public API: the
// OpenAPI check (validating) leaves them out.
const testForwarded = "X-Test-Forwarded"

// fakeCluster forwards the sessions in remote (answering for them itself, marked with header
// X-Test-From: owner) and takes requests with header testForwarded as forwarded.
type fakeCluster struct {
	remote map[string]bool
	mu     sync.Mutex
	bodies []string // what Forward was handed
}

func (c *fakeCluster) Forwarded(r *http.Request, body []byte) (bool, error) {
	switch r.Header.Get(testForwarded) {
	case "":
		return false, nil
	case "bad":
		return false, errors.New("bad signature")
	}
	return true, nil
}

func (c *fakeCluster) Forward(w http.ResponseWriter, r *http.Request, body []byte, id string) bool {
	if !c.remote[id] {
		return false
	}
	c.mu.Lock()
	c.bodies = append(c.bodies, string(body))
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Test-From", "owner")
	_, _ = io.WriteString(w, `{"status":"success_ok"}`)
	return true
}

// With a cluster, a request for a session another node carries is answered by that node
// (after the app's credentials are checked here) with the body as sent; a request forwarded by
// a node is served here and never forwarded again, even for a session the cluster calls
// remote, and skips this node's rate limit; a request with a bad signature gets 403.
func TestClusterForwarding(t *testing.T) {
	fc := &fakeCluster{remote: map[string]bool{"S-remote": true}}
	fx := newFixture(t)
	f := newFixtureWith(t, fx.e, fx.n, func(h *Handler, _ *http.ServeMux) {
		h.Cluster = fc
		h.Limit = NewLimiter(RateLimit{Rate: 0.001, Burst: 1, Log: slog.New(slog.DiscardHandler)})
		t.Cleanup(h.Limit.Close)
	})
	do := func(body, header string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/open/ivr/middle/play", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header != "" {
			req.Header.Set(testForwarded, header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if from := res.Header.Get("X-Test-From"); from != "" {
			b = append(b, "\nfrom: "+from...)
		}
		return res.StatusCode, string(b)
	}
	const remote = "app_id=A1&access_token=tok1&session=S-remote&msg=hi"
	if code, body := do(remote, ""); code != 200 || !strings.Contains(body, "from: owner") {
		t.Fatalf("remote session: %d %s", code, body)
	}
	if len(fc.bodies) != 1 || fc.bodies[0] != remote {
		t.Fatalf("forwarded bodies: %q", fc.bodies)
	}
	// The rate limit (burst 1) is spent: the next ordinary request is refused, forwarded ones are not.
	if code, body := do(remote, ""); code != 200 || !strings.Contains(body, ivr.StatusRateLimitExceeded) {
		t.Fatalf("over the rate: %d %s", code, body)
	}
	if code, body := do(remote, "yes"); code != 200 || !strings.Contains(body, ivr.StatusInvalidSession) || strings.Contains(body, "owner") {
		t.Fatalf("forwarded request for a session this node lacks: %d %s", code, body)
	}
	if code, _ := do(remote, "bad"); code != http.StatusForbidden {
		t.Fatalf("bad signature: HTTP %d", code)
	}
	if code, body := do("app_id=A1&access_token=wrong&session=S-remote&msg=hi", "yes"); code != 200 || !strings.Contains(body, ivr.StatusInvalidAccessToken) {
		t.Fatalf("forwarded with a wrong token: %d %s", code, body)
	}
	if len(fc.bodies) != 1 {
		t.Fatalf("forwarded %d times", len(fc.bodies))
	}
}
