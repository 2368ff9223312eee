package outbound

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testlog"
)

// serveOn starts an HTTP server on addr ("127.0.0.2:0") answering "ok from <addr>".
func serveOn(t *testing.T, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok from "+addr) })
	}
	s := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func get(c *http.Client, u string) (string, error) {
	res, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

func TestTransportDialTimeCheck(t *testing.T) {
	allowed := serveOn(t, "127.0.0.1:0", nil)
	denied := serveOn(t, "127.0.0.2:0", nil)
	redirect := serveOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, denied.URL+"/file.wav", http.StatusFound)
	}))
	log, logs := testlog.New()
	p := New(Config{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Log: log})
	c := &http.Client{Transport: p.Transport(nil, time.Second), Timeout: 5 * time.Second}

	if body, err := get(c, allowed.URL); err != nil || !strings.HasPrefix(body, "ok") {
		t.Fatalf("allowed server: %q, %v", body, err)
	}
	if _, err := get(c, denied.URL); !errors.Is(err, ErrDenied) {
		t.Fatalf("denied server: err %v, want ErrDenied", err)
	}
	if _, err := get(c, redirect.URL); !errors.Is(err, ErrDenied) {
		t.Fatalf("redirect to denied server: err %v, want ErrDenied", err)
	}
	// A name is checked on what it resolves to when dialled.
	port := denied.Listener.Addr().(*net.TCPAddr).Port
	p2 := New(Config{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	c2 := &http.Client{Transport: p2.Transport(nil, time.Second), Timeout: 5 * time.Second}
	if _, err := get(c2, "http://localhost:"+strconv.Itoa(port)+"/"); !errors.Is(err, ErrDenied) {
		t.Fatalf("localhost with loopback denied: err %v, want ErrDenied", err)
	}
	if !strings.Contains(logs.String(), "refused by policy") || !strings.Contains(logs.String(), "127.0.0.2") {
		t.Fatalf("no log line saying why:\n%s", logs.String())
	}
}

// ivrd's own listener is refused, except its SelfPaths (over connections never reused).
func TestTransportSelf(t *testing.T) {
	var reqs atomic.Int32
	self := serveOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		io.WriteString(w, "self "+r.URL.Path)
	}))
	p := New(Config{Self: SelfFromAddr(self.Listener.Addr()), SelfPaths: []string{"/demo/notify"}})
	c := &http.Client{Transport: p.Transport(nil, time.Second), Timeout: 5 * time.Second}
	if body, err := get(c, self.URL+"/demo/notify"); err != nil || body != "self /demo/notify" {
		t.Fatalf("self path: %q %v", body, err)
	}
	if _, err := get(c, self.URL+"/open/ivr/end/hangup"); !errors.Is(err, ErrDenied) {
		t.Fatalf("own API: err %v, want ErrDenied", err)
	}
	if n := reqs.Load(); n != 1 {
		t.Fatalf("own listener got %d requests, want 1", n)
	}
}

// Environment proxies are never used; Config.Proxy is, after the request's host is checked.
func TestTransportProxy(t *testing.T) {
	var proxied atomic.Int32
	proxy := serveOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		io.WriteString(w, "via proxy "+r.URL.String())
	}))
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	req, _ := http.NewRequest("GET", "http://app.example/notify", nil)
	// The environment does name a proxy for this request (so the checks below mean something).
	if u, err := http.ProxyFromEnvironment(req); err != nil || u == nil {
		t.Fatalf("ProxyFromEnvironment = %v, %v; the test needs it to pick the proxy", u, err)
	}
	tr := New(Config{}).Transport(nil, time.Second).(*http.Transport)
	if u, err := tr.Proxy(req); u != nil || err != nil {
		t.Fatalf("transport without --outbound-proxy uses proxy %v (%v)", u, err)
	}
	var nilPolicy *Policy
	if u, _ := nilPolicy.Transport(nil, time.Second).(*http.Transport).Proxy(req); u != nil {
		t.Fatalf("nil policy uses proxy %v", u)
	}

	pu, _ := url.Parse(proxy.URL)
	target := serveOn(t, "127.0.0.1:0", nil)
	p := New(Config{Proxy: pu, Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	c := &http.Client{Transport: p.Transport(nil, time.Second), Timeout: 5 * time.Second}
	if body, err := get(c, target.URL+"/x"); err != nil || !strings.HasPrefix(body, "via proxy") {
		t.Fatalf("with --outbound-proxy: %q %v", body, err)
	}
	if _, err := get(c, "http://127.0.0.2:9/x"); !errors.Is(err, ErrDenied) {
		t.Fatalf("denied host through the proxy: err %v, want ErrDenied", err)
	}
	if n := proxied.Load(); n != 1 {
		t.Fatalf("proxy saw %d requests, want 1", n)
	}
}
