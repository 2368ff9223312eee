package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestOutboundPolicy: with --outbound-deny 127.0.0.2/32, a notify_url on 127.0.0.2 or at
// ivrd's own HTTP port is error_invalid_notify_url, and a <url> on 127.0.0.2 (directly or by a
// redirect from an allowed server) is error_msg_download_failed; the denied server is never
// asked, ivrd logs why, and the same requests to an allowed server work.
func TestOutboundPolicy(t *testing.T) {
	denied := newFileServerOn(t, "127.0.0.2:0")
	allowed := newFileServer(t)
	r := newRig(t, "--outbound-deny", "127.0.0.2/32")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resc := r.callIn(ctx, callerNum, nil, 0)
	sid := r.answered(callerNum)

	tone := func(base string) string { return "<url>" + base + "/tone.wav</url>" }
	redirect := "<url>" + allowed.URL + "/to/a.wav?url=" + url.QueryEscape(denied.URL+"/tone.wav") + "</url>"
	own := "http://" + r.p.http + "/open/ivr/end/hangup?app_id=" + r.a.id + "&access_token=" + r.a.token + "&session=" + sid
	for _, c := range []struct {
		name   string
		params url.Values
		want   string
	}{
		{"notify_url on a denied address", url.Values{"notify_url": {denied.URL + "/n"}}, "error_invalid_notify_url"},
		{"notify_url at ivrd's own port", url.Values{"notify_url": {own}}, "error_invalid_notify_url"},
		{"notify_url on a metadata address", url.Values{"notify_url": {"http://169.254.169.254/latest/meta-data"}}, "error_invalid_notify_url"},
		{"<url> on a denied address", url.Values{"msg": {tone(denied.URL)}, "notify_url": {r.a.url("/play")}}, "error_msg_download_failed"},
		{"<url> redirected to a denied address", url.Values{"msg": {redirect}, "notify_url": {r.a.url("/play")}}, "error_msg_download_failed"},
	} {
		c.params.Set("session", sid)
		r.do("middle/play", c.want, c.params)
	}
	if n := denied.requests.Load(); n != 0 {
		t.Fatalf("the denied server was asked %d times", n)
	}
	if allowed.requests.Load() != 1 {
		t.Fatalf("the allowed server was asked %d times, want the one redirect", allowed.requests.Load())
	}
	// The same from an allowed server works, and the call goes on (ivrd's own recording
	// URLs stay reachable: see the demo and msg tests).
	r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {tone(allowed.URL)}, "notify_url": {r.a.url("/play")}})
	expect(t, r.a.next(15*time.Second), "/play", map[string]string{"ivr_block": "play", "session": sid})
	r.hangup(sid)
	<-resc
	log := r.p.log()
	for _, want := range []string{"notify_url refused", "--outbound-deny range 127.0.0.2/32", "ivrd's own HTTP listener",
		"link-local / cloud metadata range", "refused by policy"} {
		if !strings.Contains(log, want) {
			t.Errorf("ivrd log does not say %q", want)
		}
	}
}

// countingProxy is an HTTP forward proxy that counts what it carries.
type countingProxy struct {
	*http.Server
	addr string
	n    atomic.Int32
}

func startProxy(t *testing.T) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{addr: ln.Addr().String()}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		p.n.Add(1)
		r.Out.URL = r.In.URL // an absolute URL, as a proxy receives it
	}}
	p.Server = &http.Server{Handler: rp}
	go p.Serve(ln)
	t.Cleanup(func() { p.Close() })
	return p
}

// TestOutboundProxy: with --outbound-proxy every notification and <url> download goes through
// it. (That environment proxies are ignored is tested in internal/outbound: Go never sends
// loopback requests to an environment proxy, and these tests talk only to loopback.)
func TestOutboundProxy(t *testing.T) {
	proxy := startProxy(t)
	files := newFileServer(t)
	r := newRig(t, "--outbound-proxy", "http://"+proxy.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resc := r.callIn(ctx, callerNum, nil, 0)
	sid := r.answered(callerNum)
	if proxy.n.Load() != 1 {
		t.Fatalf("answer notification: the proxy carried %d requests, want 1", proxy.n.Load())
	}
	r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"<url>" + files.URL + "/tone.wav</url>"}, "notify_url": {r.a.url("/play")}})
	r.a.next(15 * time.Second)
	r.hangup(sid)
	<-resc
	if n := proxy.n.Load(); n != 4 { // answer, the download, play, hangup
		t.Fatalf("the proxy carried %d requests, want 4", n)
	}
}

// TestAPIRateLimit: --api-rate 2 --api-burst 3 answers error_rate_limit_exceeded past the
// burst, lets requests through again at the rate, and logs the refusals as one line with the
// count.
func TestAPIRateLimit(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "", "--api-rate", "2", "--api-burst", "3")
	a.ivrd = "http://" + p.http
	var got []string
	for range 6 {
		got = append(got, a.call("middle/play", url.Values{"session": {"Snope"}}))
	}
	want := "[error_invalid_session error_invalid_session error_invalid_session error_rate_limit_exceeded error_rate_limit_exceeded error_rate_limit_exceeded]"
	if s := "[" + strings.Join(got, " ") + "]"; s != want {
		t.Fatalf("burst: %s\nwant %s", s, want)
	}
	time.Sleep(600 * time.Millisecond) // one more token at 2 per second
	if st := a.call("middle/play", url.Values{"session": {"Snope"}}); st != "error_invalid_session" {
		t.Fatalf("after the refill: %s", st)
	}
	// Wrong credentials are refused before the rate counts them.
	a.token = "wrong"
	if st := a.call("middle/play", url.Values{"session": {"Snope"}}); st != "error_invalid_access_token" {
		t.Fatalf("bad token: %s", st)
	}
	p.signal(syscall.SIGTERM) // the refusals not yet logged are logged at shutdown
	<-p.exited
	b, _ := os.ReadFile(p.logPath)
	if !strings.Contains(string(b), "rate limit exceeded") || !strings.Contains(string(b), "app="+a.id+" count=3") {
		t.Fatalf("refusals not logged with their count:\n%s", b)
	}
}
