package e2e

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestTrunkOverTLS: the trunk is reached over TLS only (transport=tls, ivrd has no TLS listener
// of its own), its certificate signed by an authority ivrd trusts through --sip-trunk-ca. ivrd
// registers over TLS, and a Dial goes out over TLS (challenged, 407) to a phone that takes
// SRTP only (baresip, mediaenc=srtp-mand: it would refuse a plain RTP offer); the phone's
// tone, received as SRTP, is in the Monitor MP3; the phone's BYE comes back over the TLS
// connection ivrd opened.
func TestTrunkOverTLS(t *testing.T) {
	files, err := testpeer.NewTLSFiles(t.TempDir(), net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	// The phone answers at once, sends 1 kHz for 5 s and hangs up.
	phone := startBaresipWith(t, "", farNumber, baresipOpts{answer: true, srtp: true, micHangup: true, mic: audio.SineWave(1000, 5*time.Second, 12000)})
	ks := testpeer.Kamailio{User: trunkUser, Password: trunkPass, DIDs: []string{did}, TLS: &files,
		Routes: map[string]string{farNumber: phone.sip}}.Start(t)
	t.Setenv(config.TrunkPasswordEnv, trunkPass)
	r := newRig(t, "--sip-trunk", "sip:"+trunkUser+"@"+ks.AddrTLS+";transport=tls", "--sip-trunk-ca", files.CA,
		"--sip-trunk-register", "--log-level", "debug")
	if regs := ks.WaitEvents("registered", 1, 10*time.Second); len(regs) == 0 {
		t.Fatalf("ivrd did not register over TLS: %v", ks.Events(""))
	}

	body := r.do("start/dial", "success_ok", url.Values{"dest": {farNumber}, "notify_url": {r.a.url("/dial")}})
	sid := body["session"]
	expect(t, r.a.next(20*time.Second), "/dial", map[string]string{"dial_status": "answered", "call_state": "ongoing", "session": sid})
	r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}})
	mon := r.a.next(10 * time.Second)
	expect(t, mon, "/monitor", map[string]string{"call_state": "ongoing", "session": sid})
	// The phone hangs up: its BYE reaches ivrd through the provider, over TLS.
	final := r.a.next(15 * time.Second)
	expect(t, final, "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*", "session": sid})

	pcm := recording(t, final.params.Get("monitor_url"))
	if tone, length := toneLen(pcm, 1000), audio.Duration(len(pcm)); length < 3*time.Second || tone < length*8/10 {
		t.Fatalf("the phone's tone covers %v of the %v recording", tone, length)
	}
	// Everything ivrd sent the provider came over TLS: REGISTERs, the INVITE (twice: the
	// challenge) and its ACK; the phone's BYE went to ivrd over that connection.
	methods := map[string]int{}
	for _, ev := range ks.Events("request") {
		if strings.Contains(ev.Fields["from"], trunkUser) || strings.Contains(ev.Fields["from"], "ivrd") {
			if ev.Fields["proto"] != "tls" {
				t.Errorf("ivrd's %s reached the provider over %s", ev.Fields["method"], ev.Fields["proto"])
			}
			methods[ev.Fields["method"]]++
		}
	}
	if methods["REGISTER"] == 0 || methods["INVITE"] < 2 || methods["ACK"] == 0 {
		t.Errorf("requests from ivrd over TLS: %v", methods)
	}
	var byes []string
	for _, ev := range ks.Events("request") {
		if ev.Fields["method"] == "BYE" {
			byes = append(byes, ev.Fields["src"])
		}
	}
	if len(byes) != 1 || byes[0] != phone.sip {
		t.Errorf("BYEs through the provider from %v, want one from the phone (%s)", byes, phone.sip)
	}
	if !phone.logHas("SRTP is Enabled") {
		t.Errorf("baresip did not use SRTP")
	}
	t.Logf("over TLS: %v; the phone's 1 kHz tone (SRTP) is %v of the %v recording", methods, toneLen(pcm, 1000), audio.Duration(len(pcm)))
}

// TestTrunkOverTLSUntrusted: a trunk whose certificate no trusted authority signed (no
// --sip-trunk-ca) is not dialled: the TLS handshake fails and the Dial is failed.
func TestTrunkOverTLSUntrusted(t *testing.T) {
	files, err := testpeer.NewTLSFiles(t.TempDir(), net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	ks := testpeer.Kamailio{User: trunkUser, Password: trunkPass, TLS: &files, Routes: map[string]string{farNumber: "127.0.0.1:9"}}.Start(t)
	r := newRig(t, "--sip-trunk", "sip:"+trunkUser+":"+trunkPass+"@"+ks.AddrTLS+";transport=tls")
	body := r.do("start/dial", "success_ok", url.Values{"dest": {farNumber}, "notify_url": {r.a.url("/dial")}})
	expect(t, r.a.next(20*time.Second), "/dial", map[string]string{"dial_status": "failed", "call_state": "ended", "session": body["session"]})
	if l := r.p.logText(); !strings.Contains(l, "certificate signed by unknown authority") {
		t.Errorf("ivrd's log does not say why:\n%s", tail(l, 20))
	}
	if evs := ks.Events("request"); len(evs) != 0 {
		t.Errorf("the provider got requests over an untrusted connection: %v", evs)
	}
}

// TestTrunkOverTLSIncoming: registered over TLS (no TLS listener), ivrd gets the provider's
// calls to its DID over the TLS connection it registered on; the call is answered, plays its
// prompt, and ivrd's BYE goes back the same way.
func TestTrunkOverTLSIncoming(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	files, err := testpeer.NewTLSFiles(t.TempDir(), net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	ks := testpeer.Kamailio{User: trunkUser, Password: trunkPass, DIDs: []string{did}, TLS: &files}.Start(t)
	t.Setenv(config.TrunkPasswordEnv, trunkPass)
	r := newRig(t, "--sip-trunk", "sip:"+trunkUser+"@"+ks.AddrTLS+";transport=tls", "--sip-trunk-ca", files.CA, "--sip-trunk-register")
	if regs := ks.WaitEvents("registered", 1, 10*time.Second); len(regs) == 0 {
		t.Fatalf("ivrd did not register over TLS: %v", ks.Events(""))
	}
	resc := peerCall(ctx, t, testpeer.Call{Target: ks.Addr, Number: did, From: callerNum, Timeout: 30 * time.Second})
	sid := r.answered(callerNum)
	r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"Hello over TLS."}, "notify_url": {r.a.url("/play")}})
	expect(t, r.a.next(15*time.Second), "/play", map[string]string{"call_state": "ongoing", "session": sid})
	r.hangup(sid)
	res := <-resc
	if !res.Answered || !res.ByeFromServer || audio.RMS(res.Heard) < 200 {
		t.Fatalf("caller: answered %v, BYE %v, heard RMS %.0f", res.Answered, res.ByeFromServer, audio.RMS(res.Heard))
	}
	if l := r.p.logText(); !strings.Contains(l, "transport=TLS") {
		t.Errorf("the provider's INVITE did not reach ivrd over TLS:\n%s", tail(l, 20))
	}
	for _, m := range testpeer.Messages(res.Trace) {
		if c, _ := m.Header("Contact"); m.Status == 200 && m.Method == "INVITE" && !strings.Contains(c, "transport=tls") {
			t.Errorf("ivrd's 200 names %s: not the TLS connection", c)
		}
	}
}
