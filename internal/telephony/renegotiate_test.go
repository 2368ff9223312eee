package telephony

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// The same INVITE arriving again by another path (new Via branch, same Call-ID, From tag and
// CSeq) is refused 482 while the first one rings, and the first one goes on to be answered.
func TestMergedInvite(t *testing.T) {
	t.Parallel()
	answered := make(chan struct{}, 4)
	s := startServer(t, func(l *Leg) {
		time.Sleep(700 * time.Millisecond) // ringing while the copy arrives
		answered <- struct{}{}
		answerAndWait(nil)(l)
	})
	d := testpeer.NewDialog("6561234567", "6511111111").Invite(nil, "application/sdp", testpeer.G711SDP(1))
	d.Ringing().InviteAgain(nil, "application/sdp", testpeer.G711SDP(1)).Expect(482)
	d.Expect(200).Ack("").Pause(300 * time.Millisecond).Bye()
	res := runRaw(t, s, d)
	got := final(res, "INVITE")
	if len(got) != 2 || got[0].Status != 482 || got[1].Status != 200 {
		t.Fatalf("final responses %+v, want 482 then 200\n%s", got, res.Trace)
	}
	if len(answered) != 1 {
		t.Errorf("%d calls reached the app, want 1", len(answered))
	}
}

// An INVITE without SDP gets ivrd's offer in the 200; the caller's answer comes in the ACK,
// and the call's audio flows both ways on it.
func TestLateOffer(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	s := startServer(t, func(l *Leg) {
		l.SetTap(rec)
		answerAndWait(nil)(l)
	})
	d := testpeer.NewDialog("6561234567", "6511111111").Invite(nil, "", "").Expect(200).Ack(testpeer.G711SDP(1))
	d.Pause(800 * time.Millisecond).Bye()
	res := runRaw(t, s, d)
	ok := final(res, "INVITE")[0]
	if ct, _ := ok.Header("Content-Type"); ct != "application/sdp" || !strings.Contains(ok.Body(), "m=audio ") || !strings.Contains(strings.ToUpper(ok.Body()), "PCMU/8000") {
		t.Fatalf("200 OK carries no offer:\n%s", ok.Text)
	}
	if n := toneLen(res.Heard, 2000); n < 250*time.Millisecond {
		t.Errorf("caller heard the 300 ms prompt for %v", n)
	}
	// Without an answer in the ACK there is nothing to talk with: ivrd hangs up.
	d = testpeer.NewDialog("6561234567", "6511111111").Invite(nil, "", "").Expect(200).Ack("").AwaitBye()
	res = runRaw(t, s, d)
	if !res.ByeFromServer {
		t.Errorf("no BYE after an ACK without answer\n%s", res.Trace)
	}
}

// UPDATE (RFC 3311) is taken in a call, with an offer (answered in its 200) and without one (a
// session refresh); a re-INVITE without an offer gets ivrd's in its 200.
func TestUpdateAndReinvite(t *testing.T) {
	t.Parallel()
	s := startServer(t, answerAndWait(nil))
	d := testpeer.NewDialog("6561234567", "6511111111").Invite(nil, "application/sdp", testpeer.G711SDP(1)).Expect(200).Ack("")
	d.Pause(200 * time.Millisecond).Update("").Expect(200)
	d.Update(testpeer.G711SDP(2)).Expect(200)
	d.Reinvite("").Expect(200).Ack(testpeer.G711SDP(3))
	d.Pause(200 * time.Millisecond).Bye()
	res := runRaw(t, s, d)
	ups := final(res, "UPDATE")
	if len(ups) != 2 || ups[0].Status != 200 || ups[1].Status != 200 {
		t.Fatalf("UPDATE responses %+v\n%s", ups, res.Trace)
	}
	if ups[0].Body() != "" {
		t.Errorf("200 to an UPDATE without offer has a body:\n%s", ups[0].Text)
	}
	if !strings.Contains(ups[1].Body(), "m=audio ") {
		t.Errorf("200 to an UPDATE with an offer has no answer:\n%s", ups[1].Text)
	}
	for _, m := range ups {
		if v, ok := m.Header("Allow"); !ok || !strings.Contains(v, "UPDATE") {
			t.Errorf("200 to UPDATE: Allow %q", v)
		}
	}
	invs := final(res, "INVITE")
	if len(invs) != 2 || invs[1].Status != 200 || !strings.Contains(invs[1].Body(), "m=audio ") {
		t.Fatalf("re-INVITE without offer: %+v\n%s", invs, res.Trace)
	}
}

// A caller that holds the call (a=inactive, c=0.0.0.0, a=sendonly, a=recvonly) gets no RTP
// from ivrd until it resumes (a=sendrecv), and then gets it again at the full rate.
func TestHoldStopsSending(t *testing.T) {
	t.Parallel()
	s := startServer(t, answerAndWait(nil))
	holds := []struct {
		name, sdp, answerDir string
	}{
		{"a=inactive", testpeer.G711SDP(2, "a=inactive"), "a=inactive"},
		{"c=0.0.0.0", testpeer.AudioSDP(4, "0.0.0.0", "RTP/AVP", "0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000"), ""},
		{"a=sendonly", testpeer.G711SDP(6, "a=sendonly"), "a=recvonly"},
		{"a=recvonly", testpeer.G711SDP(8, "a=recvonly"), "a=inactive"},
	}
	d := testpeer.NewDialog("6561234567", "6511111111").Invite(nil, "application/sdp", testpeer.G711SDP(1)).Expect(200).Ack("")
	d.Pause(time.Second)
	for i, h := range holds {
		d.Reinvite(h.sdp).Expect(200).Ack("").Pause(time.Second)
		d.Reinvite(testpeer.G711SDP(2*i + 3)).Expect(200).Ack("").Pause(time.Second)
	}
	d.Bye()
	res := runRaw(t, s, d)
	oks := final(res, "INVITE")
	if len(oks) != 1+2*len(holds) {
		t.Fatalf("%d final responses to INVITEs\n%s", len(oks), res.Trace)
	}
	count := func(from, to time.Time) int {
		n := 0
		for _, a := range res.Arrivals {
			if !a.Before(from) && a.Before(to) {
				n++
			}
		}
		return n
	}
	for i, h := range holds {
		held, resumed := oks[1+2*i], oks[2+2*i]
		if h.answerDir != "" && !strings.Contains(held.Body(), h.answerDir) {
			t.Errorf("%s answered without %s:\n%s", h.name, h.answerDir, held.Body())
		}
		if end, n := afterHold(res.Arrivals, held.At, resumed.At); n > 0 || end.After(held.At.Add(250*time.Millisecond)) {
			t.Errorf("%s: sending went on %v after the hold's 200, then %d packets while held", h.name, end.Sub(held.At), n)
		}
		if n := count(resumed.At.Add(100*time.Millisecond), resumed.At.Add(900*time.Millisecond)); n < 38 {
			t.Errorf("%s: %d packets in the 0.8 s after the resume, want 40", h.name, n)
		}
	}
}

// afterHold splits the packets that arrived between a hold's 200 (at held) and the resume's
// (at resumed): the run still on its way when the 200 went out (packets no more than 100 ms
// apart, continuing the stream from before held), which ends at end, and the n that came after
// it. sipp stamps the 200 when its loop gets to it, which on a loaded machine can be tens of
// milliseconds after it arrived, so the run may reach past held; a sender that went on would
// make it run on, and one stray packet shows as n.
func afterHold(arrivals []time.Time, held, resumed time.Time) (end time.Time, n int) {
	for _, a := range arrivals {
		switch {
		case a.Before(held):
			end = a
		case !a.Before(resumed):
			return end, n
		case n == 0 && !end.IsZero() && a.Sub(end) <= 100*time.Millisecond:
			end = a
		default:
			n++
		}
	}
	return end, n
}

// From the answer on ivrd sends a frame every 20 ms although nothing plays; the tap gets the
// played frames only (a recording fills the silences itself, on its clock).
func TestRTPNeverStops(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	s := startServer(t, func(l *Leg) {
		l.SetTap(rec)
		ctx, cancel, ok := answerFor(l, 10*time.Second)
		defer cancel()
		if !ok {
			return
		}
		_ = l.Play(ctx, tone(1000, 200*time.Millisecond, 8000))
		<-l.Done()
	})
	res, err := testpeer.Call{Target: s.Addr(), Number: "100", HangupAfter: 3500 * time.Millisecond, Timeout: 10 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	if len(res.Arrivals) < 170 {
		t.Fatalf("%d packets in a 3.5 s call", len(res.Arrivals))
	}
	for i, n := range res.PerSecond(res.Arrivals[0], res.ByeAt) {
		if n < 49 {
			t.Errorf("second %d after the answer: %d packets", i, n)
		}
	}
	if _, out := rec.frames(); len(out) != 10 {
		t.Errorf("the tap got %d outbound frames, want the 200 ms prompt's 10", len(out))
	}
}
