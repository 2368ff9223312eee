package e2e

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// The trunk tests put ivrd behind a real SIP provider: Kamailio as registrar and proxy with
// digest authentication (testpeer.Kamailio). ivrd registers to it with the trunk's
// credentials, callers reach ivrd through it (Request-URI: the registered user, To: the DID),
// and ivrd's Dial and Transfer go out through it, challenged (407), to sipp phones.

const (
	trunkUser = "alice"
	trunkPass = "Tr0mbone-s3cret" // given in IVRD_SIP_TRUNK_PASSWORD; never in ivrd's log
)

// did is the app's number as the provider's callers dial it.
var did = strings.TrimPrefix(number, "+")

// logText is everything ivrd has logged so far.
func (p *ivrd) logText() string {
	b, _ := os.ReadFile(filepath.Join(p.data, "..", filepath.Base(p.data)+".log"))
	return string(b)
}

// providerRig starts the provider with routes to the phones, then ivrd registered to it (the
// password from the environment) with extra flags; it returns once ivrd has registered.
func providerRig(t *testing.T, k testpeer.Kamailio, trunkParams string, extra ...string) (*rig, *testpeer.KamailioServer) {
	t.Helper()
	k.User, k.Password, k.DIDs = trunkUser, trunkPass, []string{did}
	ks := k.Start(t)
	t.Setenv(config.TrunkPasswordEnv, trunkPass)
	r := newRig(t, append([]string{"--sip-trunk", "sip:" + trunkUser + "@" + ks.Addr + trunkParams, "--sip-trunk-register", "--log-level", "debug"}, extra...)...)
	if regs := ks.WaitEvents("registered", 1, 10*time.Second); len(regs) == 0 {
		t.Fatalf("ivrd did not register: %v", ks.Events(""))
	}
	t.Cleanup(func() {
		if strings.Contains(r.p.logText(), trunkPass) {
			t.Error("the trunk password is in ivrd's log")
		}
	})
	return r, ks
}

// TestTrunkTransferEarlyMedia: a caller dials the DID through the provider and reaches the app
// (routed by the To user); under a Monitor the app transfers the call; ivrd answers the
// provider's 407 with the trunk's credentials; the far phone plays 2 kHz as early media
// (183), answers, sends 500 Hz and hangs up. The caller hears the early media, and the
// Monitor MP3 holds the early media, the far party and the caller, each at its time. The
// registration (granted 2 s) is refreshed all along.
func TestTrunkTransferEarlyMedia(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	far, farRes := startAnswerer(ctx, t, testpeer.Answerer{
		EarlyMedia:  []testpeer.Step{testpeer.SendAudio(audio.SineWave(2000, time.Second, 12000)), testpeer.Pause(500 * time.Millisecond)},
		Script:      []testpeer.Step{testpeer.Pause(300 * time.Millisecond), testpeer.SendAudio(audio.SineWave(500, time.Second, 12000))},
		HangupAfter: 4 * time.Second,
	})
	r, ks := providerRig(t, testpeer.Kamailio{MaxExpires: 2 * time.Second, Routes: map[string]string{farNumber: far}}, "")

	resc := peerCall(ctx, t, testpeer.Call{Target: ks.Addr, Number: did, From: callerNum,
		Script: []testpeer.Step{testpeer.Pause(4 * time.Second), testpeer.SendAudio(audio.SineWave(1000, time.Second, 12000))}, Timeout: 40 * time.Second})
	sid := r.answered(callerNum) // to=+6561234567: routed by the To user
	if dl := ks.Events("deliver"); len(dl) != 1 || !strings.HasPrefix(dl[0].Fields["to"], "sip:"+trunkUser+"@") {
		t.Fatalf("the provider delivered %v, want the call to the registered contact", dl)
	}
	r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}})
	mon := r.a.next(10 * time.Second)
	expect(t, mon, "/monitor", map[string]string{"call_state": "ongoing"})
	r.do("end/transfer", "success_ok", url.Values{"session": {sid}, "dest": {farNumber}, "caller_id": {"+6561234567"}, "notify_url": {r.a.url("/transfer")}})
	notes := r.a.nextTwo(20 * time.Second)
	expect(t, notes["/transfer"], "/transfer", map[string]string{"transfer_status": "answered", "call_state": "ended", "session": sid})
	final := notes["/monitor"]
	expect(t, final, "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*"})
	cres, fres := <-resc, farRes()

	// Through the provider, challenged, with our identity.
	var invites []testpeer.KamailioEvent // challenges to INVITEs (REGISTERs get theirs too)
	for _, ev := range ks.Events("challenge") {
		if ev.Fields["method"] == "INVITE" {
			invites = append(invites, ev)
		}
	}
	if auth := ks.Events("authorized"); len(invites) != 1 || invites[0].Fields["code"] != "407" || len(auth) != 1 || auth[0].Fields["user"] != trunkUser {
		t.Fatalf("provider: challenges to INVITEs %v, authorized %v", invites, auth)
	}
	if !fres.Answered || fres.RequestUser != farNumber || fres.FromUser != "+6561234567" || fres.AssertedUser != "+6561234567" {
		t.Fatalf("far phone: answered=%v, INVITE for %q from %q asserting %q", fres.Answered, fres.RequestUser, fres.FromUser, fres.AssertedUser)
	}
	// The far phone sends 2 kHz only before its 200: the caller heard it, so early media came through.
	if got := toneLen(cres.Heard, 2000); got < 800*time.Millisecond {
		t.Fatalf("caller heard %v of the far end's early media", got)
	}
	if got := toneLen(cres.Heard, 500); got < 800*time.Millisecond {
		t.Fatalf("caller heard %v of the far party", got)
	}
	pcm := recording(t, final.params.Get("monitor_url"))
	early := oneSecondTone(t, pcm, 2000, fres.AnsweredAt.Add(-1500*time.Millisecond).Sub(mon.at), "far end's early media in the recording")
	farTone := oneSecondTone(t, pcm, 500, fres.AnsweredAt.Add(300*time.Millisecond).Sub(mon.at), "far party in the recording")
	callerTone := oneSecondTone(t, pcm, 1000, cres.AnsweredAt.Add(4*time.Second).Sub(mon.at), "caller in the recording")
	if answeredAt := fres.AnsweredAt.Sub(mon.at); early.End > answeredAt+100*time.Millisecond {
		t.Fatalf("early media in the recording until %v, the far end answered at %v", early.End, answeredAt)
	}

	// The registration, granted 2 s, was refreshed every 1.5 s.
	regs := ks.Events("registered")
	if len(regs) < 4 {
		t.Fatalf("%d registrations in %v", len(regs), regs[len(regs)-1].At.Sub(regs[0].At))
	}
	for i := 1; i < len(regs); i++ {
		if gap := regs[i].At.Sub(regs[i-1].At); gap > 1800*time.Millisecond {
			t.Fatalf("registration %d came %v after the one before; 2 s were granted", i, gap)
		}
	}
	if l := r.p.logText(); strings.Count(l, "state=registered") != 1 {
		t.Fatalf("ivrd logged the registered state %d times, want once (a state change)", strings.Count(l, "state=registered"))
	}
	t.Logf("monitor: early 2 kHz at %v, far 500 Hz at %v, caller 1 kHz at %v; %d registrations", early.Start, farTone.Start, callerTone.Start, len(regs))
}

// TestTrunkDialRedirect: a Dial through the provider over TCP without caller_id: the far
// phone redirects (302) to a second phone, which ivrd calls; both see --sip-from as From and
// P-Asserted-Identity.
func TestTrunkDialRedirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	second, secondRes := startAnswerer(ctx, t, testpeer.Answerer{HangupAfter: time.Second})
	first, firstRes := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeRedirect, RedirectTo: "sip:+6590000002@" + second})
	r, ks := providerRig(t, testpeer.Kamailio{Routes: map[string]string{farNumber: first}}, ";transport=tcp", "--sip-from", "+6560000000")
	body := r.do("start/dial", "success_ok", url.Values{"dest": {farNumber}, "notify_url": {r.a.url("/dial")}})
	expect(t, r.a.next(15*time.Second), "/dial", map[string]string{"dial_status": "answered", "call_state": "ongoing", "dest": farNumber, "session": body["session"]})
	expect(t, r.a.next(10*time.Second), "/dial", map[string]string{"dial_status": "answered", "call_state": "ended", "dest": farNumber})
	if res := firstRes(); res.Status != 302 || res.FromUser != "+6560000000" || res.AssertedUser != "+6560000000" {
		t.Fatalf("first phone: %d to INVITE from %q asserting %q", res.Status, res.FromUser, res.AssertedUser)
	}
	res := secondRes()
	if !res.Answered || res.RequestUser != "+6590000002" || res.FromUser != "+6560000000" || res.AssertedUser != "+6560000000" {
		t.Fatalf("second phone: answered=%v, INVITE for %q from %q asserting %q", res.Answered, res.RequestUser, res.FromUser, res.AssertedUser)
	}
	if reqs := ks.Events("request"); len(reqs) == 0 || reqs[0].Fields["proto"] != "tcp" {
		t.Fatalf("provider requests: %v", reqs)
	}
	// Stopping ivrd unregisters it.
	n := len(ks.Events("registered"))
	r.p.signal(syscall.SIGTERM)
	<-r.p.exited
	if regs := ks.WaitEvents("registered", n+1, 2*time.Second); len(regs) != n+1 || regs[n].Fields["expires"] != "0" {
		t.Fatalf("no unregistration at shutdown: %v", regs)
	}
}

// TestTrunkWrongPassword: the provider refuses ivrd's credentials: ivrd logs the failure, retries
// after 1 s and 2 s, never logs the password, and calls to the DID find nobody registered.
func TestTrunkWrongPassword(t *testing.T) {
	ks := testpeer.Kamailio{User: trunkUser, Password: trunkPass, DIDs: []string{did}}.Start(t)
	const wrong = "Wr0ng-passw0rd"
	t.Setenv(config.TrunkPasswordEnv, wrong)
	r := newRig(t, "--sip-trunk", "sip:"+trunkUser+"@"+ks.Addr, "--sip-trunk-register", "--log-level", "debug")
	// Each attempt: REGISTER, 401, REGISTER with credentials, 401 again.
	ch := ks.WaitEvents("challenge", 6, 10*time.Second)
	if len(ch) < 6 {
		t.Fatalf("challenges: %v", ch)
	}
	gap1, gap2 := ch[2].At.Sub(ch[0].At), ch[4].At.Sub(ch[2].At)
	if !near(gap1, time.Second, 300*time.Millisecond) || !near(gap2, 2*time.Second, 300*time.Millisecond) {
		t.Fatalf("REGISTER attempts %v and %v apart, want 1 s and 2 s", gap1, gap2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if res := <-peerCall(ctx, t, testpeer.Call{Target: ks.Addr, Number: did, From: callerNum, Timeout: 10 * time.Second}); res.Status != 480 {
		t.Fatalf("call to the DID: %d, want 480 (nobody registered)", res.Status)
	}
	l := r.p.logText()
	if !strings.Contains(l, "state=failed") || !strings.Contains(l, "401") || !strings.Contains(l, "state=retrying") || strings.Contains(l, "state=registered") {
		t.Fatalf("ivrd's log lacks the failed and retrying states:\n%s", tail(l, 30))
	}
	if strings.Contains(l, wrong) || strings.Contains(l, trunkPass) {
		t.Fatal("a password is in ivrd's log")
	}
}
