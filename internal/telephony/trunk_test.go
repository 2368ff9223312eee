package telephony

import (
	"cmp"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// Trunk tests run against a real provider: Kamailio as registrar and proxy with digest
// authentication (testpeer.Kamailio), and sipp phones behind it.

const (
	trunkUser = "alice"
	trunkPass = "s3cret-Pa55"
	farNum    = "+6590000001"
	didNum    = "6561234567"
)

// Dial through the provider: its 407 challenge is answered with the trunk's credentials
// (MD5 and SHA-256), the call reaches the phone behind the number with our identity in From
// and P-Asserted-Identity; wrong or missing credentials fail the call.
func TestDialThroughProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		algorithm string
		transport string // of the trunk URI; "" = UDP
		user      string
		pass      string
		callerID  string
		want      DialOutcome
		identity  string // From and P-Asserted-Identity user the phone sees
	}{
		{name: "md5", algorithm: "MD5", user: trunkUser, pass: trunkPass, callerID: "+6511111111", want: DialAnswered, identity: "+6511111111"},
		{name: "sha-256", algorithm: "SHA-256", user: trunkUser, pass: trunkPass, want: DialAnswered, identity: "ivrd-out"},
		{name: "tcp", algorithm: "MD5", transport: "tcp", user: trunkUser, pass: trunkPass, want: DialAnswered, identity: "ivrd-out"},
		{name: "wrong password", algorithm: "MD5", user: trunkUser, pass: "nope", want: DialFailed},
		{name: "no credentials", algorithm: "MD5", want: DialFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, log := startLoggedServer(t, func(l *Leg) {})
			var far string
			var wait func() (testpeer.Result, error)
			if tt.want == DialAnswered {
				far, wait = startAnswerer(t, testpeer.Answerer{HangupAfter: 500 * time.Millisecond})
			} else {
				far = freePort(t) // never reached
			}
			k := testpeer.Kamailio{User: trunkUser, Password: trunkPass, Algorithm: tt.algorithm, Routes: map[string]string{farNum: far}}.Start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			trunk := "sip:" + k.Addr
			if tt.transport != "" {
				trunk += ";transport=" + tt.transport
			}
			l, outcome, err := s.Dial(ctx, DialOptions{Trunk: trunk, Username: tt.user, Password: tt.pass,
				Dest: farNum, CallerID: tt.callerID, FromUser: "ivrd-out", RingTimeout: 10 * time.Second})
			if outcome != tt.want {
				t.Fatalf("Dial = %q, %v; want %q\nkamailio: %v", outcome, err, tt.want, k.Events(""))
			}
			// Kamailio logs each request, then what it did with it; its log reaches us a moment later.
			challenges := k.WaitEvents("challenge", 1, 2*time.Second)
			if len(challenges) == 0 || challenges[0].Fields["code"] != "407" {
				t.Errorf("provider's challenges: %v", challenges)
			}
			if strings.Contains(log.String(), trunkPass) {
				t.Errorf("the password is in the log")
			}
			if tt.want != DialAnswered {
				k.WaitEvents("challenge", len(k.Events("request")), 2*time.Second) // every INVITE was challenged
				if l != nil || err == nil || len(k.Events("authorized")) != 0 || len(k.Events("route")) != 0 {
					t.Errorf("Dial = %v, %v; provider authorized %v, routed %v", l, err, k.Events("authorized"), k.Events("route"))
				}
				return
			}
			waitDone(t, l, 5*time.Second) // the phone hangs up
			if proto := k.Events("request")[0].Fields["proto"]; proto != cmp.Or(tt.transport, "udp") {
				t.Errorf("INVITE reached the provider over %s", proto)
			}
			auth := k.WaitEvents("authorized", 1, 2*time.Second)
			if len(auth) != 1 || auth[0].Fields["user"] != trunkUser || auth[0].Fields["algorithm"] != tt.algorithm {
				t.Errorf("provider authorized %v, want user %s with %s", auth, trunkUser, tt.algorithm)
			}
			res, err := wait()
			if err != nil {
				t.Fatalf("phone: %v\n%s", err, res.Trace)
			}
			if res.RequestUser != farNum || res.FromUser != tt.identity || res.AssertedUser != tt.identity {
				t.Errorf("phone got INVITE for %q from %q asserting %q; want %q from and asserting %q",
					res.RequestUser, res.FromUser, res.AssertedUser, farNum, tt.identity)
			}
			if !res.Answered || res.ByeFromServer {
				t.Errorf("phone: answered %v, BYE from us %v", res.Answered, res.ByeFromServer)
			}
		})
	}
}

// A registration with a short expiry is refreshed before it runs out; a call to the DID then
// reaches us with the registered user in the Request-URI and the DID in To; ending Register
// unregisters.
func TestRegister(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			testRegister(t, transport)
		})
	}
}

func testRegister(t *testing.T, transport string) {
	legs := make(chan *Leg, 1)
	s, log := startLoggedServer(t, func(l *Leg) { legs <- l; _ = l.Reject(486) })
	k := testpeer.Kamailio{User: trunkUser, Password: trunkPass, MaxExpires: 2 * time.Second, DIDs: []string{didNum}}.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- s.Register(ctx, RegisterOptions{Registrar: "sip:" + k.Addr + ";transport=" + transport, Username: trunkUser, Password: trunkPass})
	}()

	// Granted 2 s (we ask for 10 min): refreshed every 1.5 s.
	regs := k.WaitEvents("registered", 3, 6*time.Second)
	if len(regs) < 3 {
		t.Fatalf("registrations: %v", regs)
	}
	for i := 1; i < len(regs); i++ {
		if gap := regs[i].At.Sub(regs[i-1].At); gap < time.Second || gap > 1800*time.Millisecond {
			t.Errorf("registration %d came %v after the one before; want 1.5 s (3/4 of the 2 s granted)", i, gap)
		}
	}
	if c := regs[0].Fields["contact"]; !strings.Contains(c, "sip:"+trunkUser+"@"+s.Addr()+";transport="+transport) {
		t.Errorf("registered contact %q, want %s@%s over %s", c, trunkUser, s.Addr(), transport)
	}
	if proto := k.Events("request")[0].Fields["proto"]; proto != transport {
		t.Errorf("REGISTER reached the provider over %s", proto)
	}

	res, err := testpeer.Call{Target: k.Addr, Number: didNum, Timeout: 10 * time.Second}.Run(ctx)
	if err != nil || res.Status != 486 {
		t.Fatalf("call to the DID: %d, %v\n%s", res.Status, err, res.Trace)
	}
	select {
	case l := <-legs:
		if l.To() != trunkUser || l.ToHeader() != "+"+didNum {
			t.Errorf("call to the DID: To() %q, ToHeader() %q; want %q, %q", l.To(), l.ToHeader(), trunkUser, "+"+didNum)
		}
	default:
		t.Fatal("the DID's call did not reach us")
	}

	n := len(k.Events("registered"))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Register = %v", err)
	}
	last := k.WaitEvents("registered", n+1, 2*time.Second)
	if len(last) != n+1 || last[n].Fields["expires"] != "0" {
		t.Errorf("no unregistration: %v", last)
	}
	l := log.String()
	if strings.Count(l, "state="+RegistrationRegistered) != 1 || !strings.Contains(l, "trunk unregistered") {
		t.Errorf("log lacks the state changes:\n%s", l)
	}
	if strings.Contains(l, trunkPass) {
		t.Error("the password is in the log")
	}
}

// With a wrong password the registration fails, is logged so, and is retried after 1 s, then 2 s.
func TestRegisterRetries(t *testing.T) {
	t.Parallel()
	s, log := startLoggedServer(t, func(l *Leg) {})
	k := testpeer.Kamailio{User: trunkUser, Password: trunkPass}.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	const wrong = "wrong-Pa55word"
	go func() {
		done <- s.Register(ctx, RegisterOptions{Registrar: "sip:" + k.Addr, Username: trunkUser, Password: wrong})
	}()
	// Each attempt: REGISTER, 401, REGISTER with credentials, 401 again.
	evs := k.WaitEvents("challenge", 6, 8*time.Second)
	log.wait(t, "state="+RegistrationFailed, 3, 2*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Register = %v", err)
	}
	if len(evs) < 6 {
		t.Fatalf("challenges: %v", evs)
	}
	gap1, gap2 := evs[2].At.Sub(evs[0].At), evs[4].At.Sub(evs[2].At)
	if !(gap1 > 900*time.Millisecond && gap1 < 1500*time.Millisecond && gap2 > 1900*time.Millisecond && gap2 < 2500*time.Millisecond) {
		t.Errorf("attempts %v and %v apart, want 1 s then 2 s", gap1, gap2)
	}
	if n := len(k.Events("registered")); n != 0 {
		t.Errorf("%d registrations with a wrong password", n)
	}
	l := log.String()
	if strings.Count(l, "state="+RegistrationFailed) < 3 || strings.Count(l, "state="+RegistrationRetrying) < 2 || !strings.Contains(l, "401") {
		t.Errorf("log lacks the failures and retries:\n%s", l)
	}
	if strings.Contains(l, wrong) || strings.Contains(l, trunkPass) {
		t.Error("a password is in the log")
	}
}

// The far end's early media (183 with SDP, 2 kHz before its 200) reaches the answered leg given
// as EarlyMedia, its caller and its tap, before Dial returns; after the answer (whose SDP has a
// new version) the two are bridged as usual and the far end's 1 kHz comes through.
func TestDialEarlyMedia(t *testing.T) {
	t.Parallel()
	legs := make(chan *Leg, 1)
	s, log := startLoggedServer(t, func(l *Leg) { legs <- l })
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	resc := make(chan testpeer.Result, 1)
	go func() {
		res, err := testpeer.Call{Target: s.Addr(), Number: "100", Timeout: 20 * time.Second}.Run(ctx)
		if err != nil {
			t.Errorf("caller: %v\n%s", err, res.Trace)
		}
		resc <- res
	}()
	caller := <-legs
	if err := caller.Answer(ctx); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	caller.SetTap(rec)
	far, wait := startAnswerer(t, testpeer.Answerer{
		EarlyMedia:  []testpeer.Step{testpeer.SendAudio(tone(2000, time.Second, 8000)), testpeer.Pause(300 * time.Millisecond)},
		Script:      []testpeer.Step{testpeer.SendAudio(tone(1000, time.Second, 8000))},
		HangupAfter: 1500 * time.Millisecond,
	})
	l, outcome, err := s.Dial(ctx, DialOptions{Trunk: far, Dest: farNum, EarlyMedia: caller})
	answered := time.Now()
	if outcome != DialAnswered {
		t.Fatalf("Dial = %q, %v", outcome, err)
	}
	stop := Bridge(caller, l)
	waitDone(t, l, 5*time.Second)
	stop()
	_ = caller.Hangup()
	res, fres := <-resc, func() testpeer.Result { r, _ := wait(); return r }()

	_, out := rec.frames()
	first, last, n := toneSpan(out, 2000)
	if n < 40 || !last.Before(answered) {
		t.Errorf("caller's tap: %d frames of the early 2 kHz, %v..%v; Dial returned at %v", n, first, last, answered)
	}
	if _, _, n := toneSpan(out, 1000); n < 40 {
		t.Errorf("caller's tap: %d frames of the answered far end's 1 kHz", n)
	}
	if d := toneTime(res.Heard, 2000, 0.5); d < 800*time.Millisecond {
		t.Errorf("caller heard %v of the early media", d)
	}
	if !fres.Answered || fres.Status != 200 {
		t.Errorf("far end: %d", fres.Status)
	}
	// The far end's 200 has a new SDP version: the media was moved to it, and still flows.
	if !strings.Contains(log.String(), "media updated") {
		t.Error("the answer's SDP did not update the early media session")
	}
	t.Logf("early media: %d frames of 2 kHz to the caller, the last %v before the answer", n, answered.Sub(last).Round(time.Millisecond))
}

// A 302 is followed to its Contact (with the same identity); more than three are not.
func TestDialRedirect(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(l *Leg) {})
	t.Run("followed", func(t *testing.T) {
		t.Parallel()
		final, waitFinal := startAnswerer(t, testpeer.Answerer{HangupAfter: 300 * time.Millisecond})
		redir, waitRedir := startAnswerer(t, testpeer.Answerer{Mode: testpeer.ModeRedirect, RedirectTo: "sip:+6590000009@" + final})
		l, outcome, err := s.Dial(context.Background(), DialOptions{Trunk: redir, Dest: farNum, CallerID: "+6511111111"})
		if outcome != DialAnswered {
			t.Fatalf("Dial = %q, %v", outcome, err)
		}
		if l.To() != farNum {
			t.Errorf("To() = %q, want the number dialled", l.To())
		}
		waitDone(t, l, 5*time.Second)
		rres, err := waitRedir()
		if err != nil || rres.Status != 302 {
			t.Errorf("redirector: %d, %v", rres.Status, err)
		}
		fres, err := waitFinal()
		if err != nil || !fres.Answered || fres.RequestUser != "+6590000009" || fres.FromUser != "+6511111111" || fres.AssertedUser != "+6511111111" {
			t.Errorf("redirect target: %v, answered %v, INVITE for %q from %q asserting %q", err, fres.Answered, fres.RequestUser, fres.FromUser, fres.AssertedUser)
		}
	})
	t.Run("too many", func(t *testing.T) {
		t.Parallel()
		next := freePort(t) // never reached
		var waits []func() (testpeer.Result, error)
		for range maxRedirects + 1 {
			addr, wait := startAnswerer(t, testpeer.Answerer{Mode: testpeer.ModeRedirect, RedirectTo: "sip:100@" + next})
			next = addr
			waits = append(waits, wait)
		}
		l, outcome, err := s.Dial(context.Background(), DialOptions{Trunk: next, Dest: farNum})
		if l != nil || outcome != DialFailed || err == nil || !strings.Contains(err.Error(), "redirects") {
			t.Fatalf("Dial = %v, %q, %v", l, outcome, err)
		}
		for i, w := range waits {
			if res, err := w(); err != nil || res.Status != 302 {
				t.Errorf("redirector %d: %d, %v", i, res.Status, err)
			}
		}
	})
}
