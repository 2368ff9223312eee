package telephony

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// RTP sent to a call's port from another source (another address, another SSRC) is dropped:
// it reaches neither the tap nor the caller's place in it, and the caller's own audio goes on.
func TestInjectedRTPIgnored(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	s := startServer(t, func(l *Leg) {
		l.SetTap(rec)
		_, cancel, ok := answerFor(l, 10*time.Second)
		defer cancel()
		if ok {
			<-l.Done()
		}
	})
	injected := make(chan struct{})
	res, err := testpeer.Call{
		Target: s.Addr(), Number: "100", Timeout: 10 * time.Second, HangupAfter: 3 * time.Second,
		Script: []testpeer.Step{testpeer.Pause(200 * time.Millisecond), testpeer.SendAudio(tone(1000, 2*time.Second, 8000))},
		OnMedia: func(ivrd netip.AddrPort) {
			defer close(injected)
			time.Sleep(700 * time.Millisecond) // the caller's tone has begun
			if err := testpeer.InjectRTP(context.Background(), ivrd, 0x1234, tone(2000, time.Second, 12000)); err != nil {
				t.Error(err)
			}
		},
	}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	<-injected
	in, _ := rec.frames()
	if _, _, n := toneSpan(in, 1000); n < 95 {
		t.Errorf("%d inbound frames carry the caller's 1 kHz, want 100", n)
	}
	for _, f := range in {
		if toneShare(f.pcm, 2000) > 0.1 {
			t.Fatalf("injected 2 kHz reached the tap at %v", f.at)
		}
	}
}

// A call over TCP: the responses and ivrd's BYE use the caller's connection, audio flows
// both ways.
func TestCallOverTCP(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	s := startServer(t, func(l *Leg) {
		l.SetTap(rec)
		ctx, cancel, ok := answerFor(l, 10*time.Second)
		defer cancel()
		if !ok {
			return
		}
		_ = l.Play(ctx, tone(2000, 500*time.Millisecond, 8000))
		time.Sleep(time.Second)
		_ = l.Hangup()
	})
	res, err := testpeer.Call{Target: s.Addr(), Number: "100", Transport: "tcp", Timeout: 10 * time.Second,
		Script: []testpeer.Step{testpeer.SendAudio(tone(1000, 500*time.Millisecond, 8000)), testpeer.Pause(5 * time.Second)}}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if !res.Answered || !res.ByeFromServer || !strings.Contains(res.Trace, "TCP message received") {
		t.Fatalf("answered %v, BYE from server %v\n%s", res.Answered, res.ByeFromServer, res.Trace)
	}
	if d := toneLen(res.Heard, 2000); d < 450*time.Millisecond {
		t.Errorf("caller heard 2 kHz for %v, want 0.5 s", d)
	}
	in, _ := rec.frames()
	if _, _, n := toneSpan(in, 1000); n < 20 {
		t.Errorf("%d inbound frames carry 1 kHz", n)
	}
}

// A caller whose Via shows it is behind NAT (its sent-by is not where its requests come from)
// and whose Contact cannot be reached still gets ivrd's BYE: it goes where the INVITE came
// from.
func TestByeToSourceBehindNAT(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(l *Leg) {
		_, cancel, ok := answerFor(l, 10*time.Second)
		defer cancel()
		if !ok {
			return
		}
		time.Sleep(300 * time.Millisecond)
		if err := l.Hangup(); err != nil {
			t.Errorf("Hangup: %v", err)
		}
	})
	xml := testpeer.NewDialog("100", "6511111111").Invite(nil, "application/sdp", testpeer.G711SDP(1)).Expect(200).Ack("").AwaitBye().XML()
	// The phone behind NAT writes its private address in Via and Contact.
	xml = strings.Replace(xml, "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]", "Via: SIP/2.0/[transport] 10.11.12.13:5062;rport;branch=[branch]", 1)
	xml = strings.Replace(xml, "Contact: <sip:6511111111@[local_ip]:[local_port];transport=[transport]>", "Contact: <sip:6511111111@10.11.12.13:5062>", 1)
	res, err := testpeer.Raw{Target: s.Addr(), XML: xml, Timeout: 10 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if !res.ByeFromServer {
		t.Fatalf("BYE did not reach the caller\n%s", res.Trace)
	}
}

// --sip-allow: an INVITE from outside the allowed prefixes gets 403. --sip-invite-rate: the
// INVITEs of a source beyond its rate get 503 with Retry-After.
func TestAllowAndInviteRate(t *testing.T) {
	t.Parallel()
	call := func(s *Server) testpeer.Message {
		res := runRaw(t, s, testpeer.NewDialog("100", "6511111111").Invite(nil, "application/sdp", testpeer.G711SDP(1)).Expect(486))
		return final(res, "INVITE")[0]
	}
	reject := func(l *Leg) { _ = l.Reject(486) }

	s := startServerWith(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, reject)
	if m := call(s); m.Status != 403 {
		t.Errorf("outside the allow list: %d, want 403", m.Status)
	}
	s = startServerWith(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8")}}, reject)
	if m := call(s); m.Status != 486 {
		t.Errorf("inside the allow list: %d, want the app's 486", m.Status)
	}

	s = startServerWith(t, Config{InviteRate: 0.5}, reject) // one INVITE every 2 s, bursts of 1
	if m := call(s); m.Status != 486 {
		t.Fatalf("first INVITE: %d, want the app's 486", m.Status)
	}
	m := call(s)
	if m.Status != 503 {
		t.Fatalf("second INVITE at once: %d, want 503", m.Status)
	}
	if ra, ok := m.Header("Retry-After"); !ok || (ra != "1" && ra != "2") {
		t.Errorf("Retry-After %q, want 1 or 2 (seconds)", ra)
	}
}
