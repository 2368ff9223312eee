package cluster

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
)

// signedRequest is a request as node from forwards it with secret, at.
func signedRequest(secret, from string, at time.Time, body string) *http.Request {
	f := &Forwarder{n: &Node{cfg: Config{ID: from, Secret: secret}}}
	r := httptest.NewRequest(http.MethodPost, "/open/ivr/middle/play?x=1", strings.NewReader(body))
	f.sign(r, []byte(body), at)
	return r
}

// Only a request signed with the receiving node's secret, recently, over exactly what arrives
// counts as forwarded; one without the headers is an ordinary request.
func TestForwardedSignature(t *testing.T) {
	recv := &Forwarder{n: &Node{cfg: Config{ID: "nb", Secret: "s3cret"}}}
	now := time.Now()
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		body   string
		fwd    bool
		failed bool
	}{
		{"plain request", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/open/ivr/middle/play", nil) }, "", false, false},
		{"signed", func() *http.Request { return signedRequest("s3cret", "na", now, "a=1") }, "a=1", true, false},
		{"other secret", func() *http.Request { return signedRequest("other", "na", now, "a=1") }, "a=1", false, true},
		{"body changed", func() *http.Request { return signedRequest("s3cret", "na", now, "a=1") }, "a=2", false, true},
		{"too old", func() *http.Request { return signedRequest("s3cret", "na", now.Add(-2*MaxSkew), "a=1") }, "a=1", false, true},
		{"from the future", func() *http.Request { return signedRequest("s3cret", "na", now.Add(2*MaxSkew), "a=1") }, "a=1", false, true},
		{"sender renamed", func() *http.Request {
			r := signedRequest("s3cret", "na", now, "a=1")
			r.Header.Set(HeaderFrom, "nx")
			return r
		}, "a=1", false, true},
		{"path changed", func() *http.Request {
			r := signedRequest("s3cret", "na", now, "a=1")
			r.URL.RawQuery = "x=2"
			return r
		}, "a=1", false, true},
		{"signature only", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set(HeaderSignature, "00")
			return r
		}, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fwd, err := recv.Forwarded(tc.req(), []byte(tc.body))
			if fwd != tc.fwd || (err != nil) != tc.failed {
				t.Fatalf("Forwarded = %v, %v; want %v, failed %v", fwd, err, tc.fwd, tc.failed)
			}
		})
	}
	// A node without a secret takes no forwarded request.
	noSecret := &Forwarder{n: &Node{cfg: Config{ID: "nb"}}}
	if fwd, err := noSecret.Forwarded(signedRequest("", "na", now, ""), nil); fwd || err == nil {
		t.Fatalf("a node without a secret took a forwarded request: %v, %v", fwd, err)
	}
}

// FuzzForwarded: whatever headers arrive, a request is taken as forwarded only with the right
// signature.
func FuzzForwarded(f *testing.F) {
	f.Add("na", strconv.FormatInt(time.Now().Unix(), 10), "00", []byte("a=1"))
	f.Add("", "", "", []byte(nil))
	f.Add("na", "-99999999999999999999", "zz", []byte("x"))
	recv := &Forwarder{n: &Node{cfg: Config{ID: "nb", Secret: "s3cret"}}}
	f.Fuzz(func(t *testing.T, from, ts, sig string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/open/ivr/middle/play", bytes.NewReader(body))
		r.Header.Set(HeaderFrom, from)
		r.Header.Set(HeaderTime, ts)
		r.Header.Set(HeaderSignature, sig)
		fwd, err := recv.Forwarded(r, body)
		want := signature("s3cret", from, ts, http.MethodPost, "/open/ivr/middle/play", body)
		if fwd && (sig != want || err != nil) {
			t.Fatalf("taken as forwarded with signature %q", sig)
		}
	})
}

// A request for a session another live node carries is answered by that node, signed; one for
// a session here, unknown, or of a dead node is not forwarded; an owner that does not answer
// gives 502.
func TestForward(t *testing.T) {
	st := openPG(t)
	var owner *Forwarder
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		if fwd, err := owner.Forwarded(r, b); !fwd || err != nil {
			http.Error(w, "not forwarded", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success_ok","path":"`+r.URL.RequestURI()+`"}`)
	}))
	defer srv.Close()
	a, err := startNode(t, st, "na", "s3cret", newTakeOvers().take)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Store: st, ID: "nb", APIURL: srv.URL, Secret: "s3cret", Beat: 50 * time.Millisecond, Silence: 10 * time.Second,
		TakeOver: newTakeOvers().take, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	owner = b.NewForwarder(func(string) bool { return true }, time.Second)
	for _, r := range []store.SessionRow{{ID: "S-b", AppID: "A1", State: "running", Node: "nb"},
		{ID: "S-a", AppID: "A1", State: "running", Node: "na"}, {ID: "S-gone", AppID: "A1", State: "running", Node: "nx"}} {
		if err := st.SaveSession(r); err != nil {
			t.Fatal(err)
		}
	}
	here := map[string]bool{"S-here": true}
	fa := a.NewForwarder(func(id string) bool { return here[id] }, time.Second)
	for _, tc := range []struct {
		sid  string
		code int // 0: not forwarded
	}{{"S-b", 200}, {"S-a", 0}, {"S-here", 0}, {"S-unknown", 0}, {"S-gone", 0}} {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/open/ivr/middle/play?session="+tc.sid, strings.NewReader("msg=hi"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		done := fa.Forward(w, req, []byte("msg=hi"), tc.sid)
		switch {
		case done != (tc.code != 0):
			t.Errorf("%s: forwarded %v", tc.sid, done)
		case done && (w.Code != tc.code || !strings.Contains(w.Body.String(), `"path":"/open/ivr/middle/play?session=`+tc.sid+`"`) || gotBody != "msg=hi"):
			t.Errorf("%s: answered %d %s (body seen %q)", tc.sid, w.Code, w.Body, gotBody)
		}
	}
	srv.Close() // the owner stops answering, still registered as live
	w := httptest.NewRecorder()
	if !fa.Forward(w, httptest.NewRequest(http.MethodGet, "/open/ivr/middle/play?session=S-b", nil), nil, "S-b") || w.Code != http.StatusBadGateway {
		t.Errorf("owner not answering: %d", w.Code)
	}
	b.Close()
}
