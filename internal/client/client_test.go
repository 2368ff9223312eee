package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ivrd/ivrd/internal/notify"
)

func TestCallSendsCredentialsAndReadsAnswer(t *testing.T) {
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/open/ivr/start/dial" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		got = r.PostForm
		w.Write([]byte(`{"status":"success_ok","session":"S1","txn_ref":"TX1"}`))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/", AppID: "AP1", Token: "tok"}
	params := url.Values{"dest": {"+6590000001"}}
	out, err := c.Call(context.Background(), "ivr/start/dial", params)
	if err != nil || out["status"] != StatusOK || out["session"] != "S1" {
		t.Fatalf("Call = %v, %v", out, err)
	}
	if got.Get("app_id") != "AP1" || got.Get("access_token") != "tok" || got.Get("dest") != "+6590000001" {
		t.Fatalf("server got %v", got)
	}
	if params.Get("app_id") != "" {
		t.Fatal("Call changed the caller's params")
	}
	if st, err := c.Block(context.Background(), "start/dial", nil); err != nil || st != StatusOK {
		t.Fatalf("Block = %q, %v", st, err)
	}
	if _, err := c.Block(context.Background(), "middle/nothing", nil); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("404 not reported: %v", err)
	}
}

func TestReceiverVerifiesAndDropsDuplicates(t *testing.T) {
	var handled []Notification
	var bad, dups int
	rc := &Receiver{Token: func() string { return "tok" }, Handle: func(n Notification) { handled = append(handled, n) },
		BadSignature: func(*http.Request, []byte) { bad++ }, Duplicate: func(Notification) { dups++ }}
	post := func(body, sig, id string) int {
		req := httptest.NewRequest(http.MethodPost, "/monitor?x=1", strings.NewReader(body))
		req.Header.Set(notify.HeaderSignature, sig)
		req.Header.Set(notify.HeaderDeliveryID, id)
		req.Header.Set(notify.HeaderAttempt, "2")
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		return w.Code
	}
	body := "ivr_block=monitor&session=S1"
	for _, tc := range []struct {
		body, sig, id string
		code          int
	}{
		{body, notify.Sign("tok", []byte(body)), "d1", 200},
		{body, notify.Sign("tok", []byte(body)), "d1", 200}, // retry of a delivery already handled
		{body, notify.Sign("other", []byte(body)), "d2", 403},
		{body, "zz", "d3", 403},
		{body, notify.Sign("tok", []byte(body)), "", 200}, // no id: not handled
	} {
		if code := post(tc.body, tc.sig, tc.id); code != tc.code {
			t.Errorf("%+v: HTTP %d", tc, code)
		}
	}
	if len(handled) != 1 || bad != 2 || dups != 2 {
		t.Fatalf("handled %d, bad %d, dups %d", len(handled), bad, dups)
	}
	n := handled[0]
	if n.Path != "/monitor" || n.Params.Get("session") != "S1" || n.DeliveryID != "d1" || n.Attempt != "2" || n.At.IsZero() {
		t.Fatalf("notification %+v", n)
	}
}

func TestReceiverForgetsOldestIDs(t *testing.T) {
	rc := &Receiver{}
	for i := range maxSeen + 10 {
		if !rc.first(string(rune('a'+i%26)) + strings.Repeat("x", i/26)) {
			t.Fatalf("id %d seen twice", i)
		}
	}
	if len(rc.seen) != maxSeen || len(rc.ring) != maxSeen {
		t.Fatalf("remembers %d/%d ids", len(rc.seen), len(rc.ring))
	}
	if !rc.first("a") { // the very first id has been forgotten
		t.Fatal("oldest id still remembered")
	}
}
