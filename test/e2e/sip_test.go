package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testnet"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// callerToneAt is when, after the answer, the callers of these tests send their 1 s 1 kHz tone.
const callerToneAt = 2500 * time.Millisecond

// callerMic is what a baresip caller sends: silence, then the 1 kHz tone at callerToneAt.
func callerMic() []int16 {
	return append(make([]int16, audio.Samples(callerToneAt)), audio.SineWave(1000, time.Second, 12000)...)
}

// monitoredCall is the app's side of a recorded call: Monitor (no msg: recording starts at
// once, and answers the call), then Play of the file server's 1 s 2 kHz tone, then Hangup
// hold after the recording started. It returns the decoded recording, when the recording
// started (its ongoing notification) and when the prompt started (its play notification, less
// its second).
func (r *rig) monitoredCall(sid string, fs *fileServer, hold time.Duration) (rec []int16, tRec, tPrompt time.Time) {
	r.t.Helper()
	r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}})
	mon := r.a.next(15 * time.Second)
	expect(r.t, mon, "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ongoing", "session": sid})
	r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"<url>" + fs.URL + "/tone.wav</url>"}, "notify_url": {r.a.url("/play")}})
	play := r.a.next(15 * time.Second)
	expect(r.t, play, "/play", map[string]string{"ivr_block": "play", "call_state": "ongoing"})
	time.Sleep(time.Until(mon.at.Add(hold)))
	r.do("end/hangup", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/hangup")}})
	ended := r.a.nextTwo(15 * time.Second)
	expect(r.t, ended["/monitor"], "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*"})
	return recording(r.t, ended["/monitor"].params.Get("monitor_url")), mon.at, play.at.Add(-time.Second)
}

// checkBothWays checks a monitoredCall: the recording holds the prompt (2 kHz) where it was
// played and the caller's tone (1 kHz) callerToneAt after the answer, each once for 1 s, and
// the caller heard the prompt.
func checkBothWays(t *testing.T, rec []int16, tRec, tPrompt time.Time, heard []int16) {
	t.Helper()
	oneSecondTone(t, rec, 2000, tPrompt.Sub(tRec), "prompt in the recording")
	oneSecondTone(t, rec, 1000, callerToneAt, "caller's tone in the recording")
	if d := toneLen(heard, 2000); !near(d, time.Second, 200*time.Millisecond) {
		t.Fatalf("the caller heard the 1 s prompt for %v", d)
	}
}

// TestSIPTransports: whole monitored calls over TCP (sipp, and baresip) and over TLS with
// SDES-SRTP (baresip), recorded correctly: both directions in the MP3 where they belong, the
// prompt heard by the caller, ivrd's BYE on the caller's connection.
func TestSIPTransports(t *testing.T) {
	dir := t.TempDir()
	certs, err := testpeer.NewTLSFiles(dir, net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := freeSIPPort(t)
	r := newRig(t, "--sip-tls", tlsAddr, "--tls-cert", certs.Cert, "--tls-key", certs.Key)
	fs := newFileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	t.Run("sipp over TCP", func(t *testing.T) {
		r.sub(t)
		resc := peerCall(ctx, t, testpeer.Call{Target: r.p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum, Transport: "tcp",
			Script:  []testpeer.Step{testpeer.Pause(callerToneAt), testpeer.SendAudio(audio.SineWave(1000, time.Second, 12000))},
			Timeout: 30 * time.Second})
		sid := r.answered(callerNum)
		rec, tRec, tPrompt := r.monitoredCall(sid, fs, 5*time.Second)
		res := <-resc
		if !res.ByeFromServer || !strings.Contains(res.Trace, "TCP message received") {
			t.Fatalf("sipp over TCP: bye from ivrd %v\n%s", res.ByeFromServer, tail(res.Trace, 30))
		}
		checkBothWays(t, rec, tRec, tPrompt, heardFrom(res, res.AnsweredAt))
	})

	for _, tc := range []struct {
		name string
		o    baresipOpts
		addr string
	}{
		{"baresip over TCP", baresipOpts{transport: "tcp"}, r.p.sip},
		{"baresip over TLS with SRTP", baresipOpts{transport: "tls", caFile: certs.CA, srtp: true}, tlsAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.sub(t)
			tc.o.mic = callerMic()
			b := startBaresipWith(t, tc.addr, callerNum2, tc.o)
			sid := r.answered(callerNum2)
			rec, tRec, tPrompt := r.monitoredCall(sid, fs, 5*time.Second)
			b.waitLog("terminated", 5*time.Second) // ivrd's BYE
			checkBothWays(t, rec, tRec, tPrompt, b.heardPCM())
			if tc.o.srtp && !b.logHas("SRTP is Enabled") {
				t.Fatal("baresip did not use SRTP")
			}
		})
	}
}

// TestCallerBehindNAT: baresip in a network namespace behind a masquerading router, its SDP
// and Contact naming its private address: ivrd answers its media where it comes from (both
// directions reach the recording and the caller) and its BYE reaches the caller through the
// NAT.
func TestCallerBehindNAT(t *testing.T) {
	nat, err := testnet.New()
	if errors.Is(err, testnet.ErrUnavailable) {
		t.Skip("caller behind NAT needs network namespaces: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nat.Close(); err != nil {
			t.Error(err)
		}
	})
	l, err := net.ListenPacket("udp", net.JoinHostPort(nat.HostIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	sipAddr := l.LocalAddr().String()
	l.Close()
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", sipAddr)
	a.ivrd = "http://" + p.http
	r := &rig{t: t, a: a, p: p}
	fs := newFileServer(t)

	b := startBaresipWith(t, sipAddr, callerNum, baresipOpts{nat: nat, mic: callerMic()})
	sid := r.answered(callerNum)
	rec, tRec, tPrompt := r.monitoredCall(sid, fs, 5*time.Second)
	b.waitLog("terminated", 5*time.Second) // ivrd's BYE came through the NAT
	checkBothWays(t, rec, tRec, tPrompt, b.heardPCM())
	if !logHas(t, p, "nat=true") {
		t.Error("ivrd did not see the caller behind NAT")
	}
}

// logHas reports whether ivrd's log so far contains s.
func logHas(t *testing.T, p *ivrd, s string) bool {
	t.Helper()
	return strings.Contains(p.logText(), s)
}

// freePortRange returns n consecutive UDP ports on 127.0.0.1, starting even, free a moment ago.
func freePortRange(t *testing.T, n int) (int, int) {
	t.Helper()
	for p := 30000 + 2*rand.IntN(10000); p < 65000; p += n + n%2 {
		free := true
		for q := p; q < p+n && free; q++ {
			c, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				free = false
				break
			}
			c.Close()
		}
		if free {
			return p, p + n - 1
		}
	}
	t.Fatal("no free port range")
	return 0, 0
}

// TestAdvertisedAddressAndPorts: --external-ip is what ivrd names in its Contact and SDP, and
// --rtp-ports bounds its RTP port.
func TestAdvertisedAddressAndPorts(t *testing.T) {
	lo, hi := freePortRange(t, 10)
	r := newRig(t, "--external-ip", "127.0.0.2", "--rtp-ports", fmt.Sprintf("%d-%d", lo, hi))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resc := r.callIn(ctx, callerNum, nil, 0)
	sid := r.answered(callerNum)
	r.do("middle/play", "success_ok", url.Values{"session": {sid}, "msg": {"Hello."}, "notify_url": {r.a.url("/play")}})
	r.a.next(15 * time.Second)
	r.hangup(sid)
	res := <-resc
	var ok testpeer.Message
	for _, m := range testpeer.Messages(res.Trace) {
		if m.Received && m.Method == "INVITE" && m.Status == 200 {
			ok = m
		}
	}
	if c, _ := ok.Header("Contact"); !strings.Contains(c, "@127.0.0.2:") {
		t.Errorf("200's Contact %q, want 127.0.0.2", c)
	}
	var port int
	for line := range strings.Lines(ok.Body()) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "m=audio" {
			port, _ = strconv.Atoi(f[1])
		}
	}
	if !strings.Contains(ok.Body(), "c=IN IP4 127.0.0.2") || port < lo || port > hi {
		t.Errorf("200's SDP (want c=127.0.0.2, m=audio port in %d-%d):\n%s", lo, hi, ok.Body())
	}
}
