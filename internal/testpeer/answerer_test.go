package testpeer

import (
	"context"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// The answerer's scenario is well-formed XML in every mode and answers as the mode says.
func TestAnswererScenario(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		a        Answerer
		want     []string
		wantNot  []string
		wantFail bool
	}{
		{Answerer{}, []string{"SIP/2.0 200 OK", "m=audio 4000 RTP/AVP 0 101", `<recv request="BYE"/>`, `assign_to="caller"`}, []string{"486", "CANCEL"}, false},
		{Answerer{Mode: ModeAnswer, PCMA: true, HangupAfter: time.Second, Script: []Step{SendAudio(make([]int16, 800)), SendInfoDTMF('5')}},
			[]string{"RTP/AVP 8 101", "rtp_stream=", "CSeq: 1 INFO", "CSeq: 2 BYE", "From: [$callee];tag=[pid]SIPpTag01[call_number]", "To: [$caller]"}, nil, false},
		{Answerer{Mode: ModeBusy}, []string{"SIP/2.0 486 Busy Here", `<recv request="ACK" timeout=`}, []string{"200 OK", "$caller"}, false},
		{Answerer{Mode: ModeDecline}, []string{"SIP/2.0 603 Decline"}, []string{"200 OK"}, false},
		{Answerer{Mode: ModeNoAnswer}, []string{"180 Ringing", `<recv request="CANCEL"/>`, "487 Request Terminated", "CSeq: [last_cseq_number] INVITE"}, []string{"application/sdp"}, false},
		{Answerer{Mode: "maybe"}, nil, nil, true},
		{Answerer{Script: []Step{SendDTMF('x')}}, nil, nil, true},
	}
	for _, tt := range tests {
		s, err := tt.a.scenario(uasParams{mediaPort: 4000, dir: dir})
		if tt.wantFail {
			if err == nil {
				t.Errorf("%+v: no error", tt.a)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tt.a, err)
		}
		dec := xml.NewDecoder(strings.NewReader(s))
		dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
		for {
			if _, err := dec.Token(); err != nil {
				if err != io.EOF {
					t.Fatalf("mode %q: not XML: %v\n%s", tt.a.Mode, err, s)
				}
				break
			}
		}
		for _, w := range tt.want {
			if !strings.Contains(s, w) {
				t.Errorf("mode %q: scenario lacks %q", tt.a.Mode, w)
			}
		}
		for _, w := range tt.wantNot {
			if strings.Contains(s, w) {
				t.Errorf("mode %q: scenario has %q", tt.a.Mode, w)
			}
		}
	}
}

const uasTrace = `----------------------------------------------- 2026-11-25 02:44:38.084799
UDP message received [656] bytes :

INVITE sip:+6590000001@127.0.0.1:47421 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:59376;branch=z9hG4bK.O1tk;rport
To: <sip:+6590000001@127.0.0.1>
Call-ID: cb47
CSeq: 4963 INVITE
From: "Caller" <sip:+6511111111@127.0.0.1>;tag=IZbt
Content-Type: application/sdp

v=0
o=- 1 1 IN IP4 127.0.0.1

----------------------------------------------- 2026-11-25 02:44:38.086035
UDP message sent (344 bytes):

SIP/2.0 180 Ringing
CSeq: 4963 INVITE

----------------------------------------------- 2026-11-25 02:44:40.084799
UDP message received [300] bytes :

CANCEL sip:+6590000001@127.0.0.1:47421 SIP/2.0
CSeq: 4963 CANCEL

----------------------------------------------- 2026-11-25 02:44:40.085035
UDP message sent (344 bytes):

SIP/2.0 200 OK
CSeq: 4963 CANCEL

----------------------------------------------- 2026-11-25 02:44:40.085135
UDP message sent (344 bytes):

SIP/2.0 487 Request Terminated
CSeq: 4963 INVITE
`

func TestInviteParties(t *testing.T) {
	tests := []struct {
		name, log, ruser, from string
		asserted               string
	}{
		{"trace", uasTrace, "+6590000001", "+6511111111", ""},
		{"asserted identity", "--------------------------------------------------- x\nUDP message received [1] bytes :\n\nINVITE sip:100@h SIP/2.0\nFrom: <sip:+6561234567@h>;tag=1\nP-Asserted-Identity: <sip:+6561234567@h>\n\n", "100", "+6561234567", "+6561234567"},
		{"asserted tel URI", "--------------------------------------------------- x\nUDP message received [1] bytes :\n\nINVITE sip:100@h SIP/2.0\np-asserted-identity: \"Shop\" <tel:+6561234567;npdi>, <sip:a@h>\n\n", "100", "", "+6561234567"},
		{"compact from, no brackets", "--------------------------------------------------- x\nUDP message received [1] bytes :\n\nINVITE sip:100@h SIP/2.0\nf: sip:alice@h;tag=1\n\n", "100", "alice", ""},
		{"sent INVITE does not count", "--------------------------------------------------- x\nUDP message sent (1 bytes):\n\nINVITE sip:100@h SIP/2.0\nFrom: <sip:a@h>\n\n", "", "", ""},
		{"user params and password", "--------------------------------------------------- x\nUDP message received [1] bytes :\n\nINVITE sip:+65;npdi@h SIP/2.0\nFrom: <sip:bob:secret@h>\n\n", "+65", "bob", ""},
		{"no user", "--------------------------------------------------- x\nUDP message received [1] bytes :\n\nINVITE sip:h SIP/2.0\nFrom: <sip:h>\n\n", "", "", ""},
		{"empty", "", "", "", ""},
	}
	for _, tt := range tests {
		p := inviteParties(tt.log)
		if p.requestUser != tt.ruser || p.fromUser != tt.from || p.assertedUser != tt.asserted {
			t.Errorf("%s: got %+v; want %q, %q, %q", tt.name, p, tt.ruser, tt.from, tt.asserted)
		}
	}
}

func TestUASOutcome(t *testing.T) {
	o := readUASOutcome(parseTrace(uasTrace))
	if o.status != 487 || !o.cancelled || o.byeFromServer || !o.answeredAt.IsZero() {
		t.Errorf("outcome %+v", o)
	}
	answered := []traceMsg{
		{Received: true, Start: "INVITE sip:1@h SIP/2.0", Method: "INVITE"},
		{Start: "SIP/2.0 200 OK", Method: "INVITE", At: time.Unix(5, 0)},
		{Received: true, Start: "SIP/2.0 200 OK", Method: "BYE"}, // a response to our BYE
		{Received: true, Start: "BYE sip:1@h SIP/2.0", Method: "BYE", At: time.Unix(9, 0)},
	}
	o = readUASOutcome(answered)
	if o.status != 200 || !o.answeredAt.Equal(time.Unix(5, 0)) || !o.byeFromServer || !o.byeAt.Equal(time.Unix(9, 0)) || o.cancelled {
		t.Errorf("outcome %+v", o)
	}
}

func FuzzInviteParties(f *testing.F) {
	f.Add(uasTrace)
	f.Add("--- x\nUDP message received [1] bytes :\n\nINVITE sip:@ SIP/2.0\nFrom:<\n")
	f.Fuzz(func(t *testing.T, log string) {
		p := inviteParties(log)
		for _, u := range []string{p.requestUser, p.fromUser, p.assertedUser} {
			if strings.ContainsAny(u, "@\r\n") {
				t.Fatalf("user %q", u)
			}
		}
		_ = readUASOutcome(parseTrace(log))
	})
}

// sipp calls sipp: a Call to an Answerer, in each mode.
func TestAnswererWithCall(t *testing.T) {
	if !Available() {
		t.Skip("sipp not installed")
	}
	t.Parallel()
	tests := []struct {
		name      string
		a         Answerer
		c         Call
		status    int
		cancelled bool
	}{
		{"busy", Answerer{Mode: ModeBusy}, Call{}, 486, false},
		{"decline", Answerer{Mode: ModeDecline}, Call{}, 603, false},
		{"cancelled", Answerer{Mode: ModeNoAnswer}, Call{CancelAfter: 300 * time.Millisecond}, 487, true},
		{"answered, audio both ways", Answerer{
			Script:      []Step{SendAudio(audio.SineWave(2000, 500*time.Millisecond, 8000))},
			HangupAfter: time.Second,
		}, Call{Script: []Step{SendAudio(audio.SineWave(1000, 500*time.Millisecond, 8000)), Pause(2 * time.Second)}}, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.a.Timeout = 10 * time.Second
			addr, wait, err := tt.a.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c := tt.c
			c.Target, c.Number, c.From, c.Timeout = addr, "+6590000009", "6511111111", 10*time.Second
			cres, cerr := c.Run(context.Background())
			ares, aerr := wait()
			if cerr != nil || aerr != nil {
				t.Fatalf("caller: %v\nanswerer: %v\n%s", cerr, aerr, ares.Trace)
			}
			if cres.Status != tt.status || ares.Status != tt.status || ares.Cancelled != tt.cancelled {
				t.Errorf("caller got %d, answerer sent %d, cancelled %v; want %d, %v", cres.Status, ares.Status, ares.Cancelled, tt.status, tt.cancelled)
			}
			if ares.RequestUser != "+6590000009" || ares.FromUser != "6511111111" {
				t.Errorf("answerer saw %q from %q", ares.RequestUser, ares.FromUser)
			}
			if tt.status != 200 {
				return
			}
			if !cres.ByeFromServer || ares.ByeFromServer {
				t.Errorf("BYE: caller got one %v, answerer got one %v; want only the caller", cres.ByeFromServer, ares.ByeFromServer)
			}
			for _, h := range []struct {
				who   string
				pcm   []int16
				freq  float64
				other float64
			}{{"caller", cres.Heard, 2000, 1000}, {"answerer", ares.Heard, 1000, 2000}} {
				var got time.Duration
				for _, s := range audio.ToneSpans(h.pcm, audio.Rate, h.freq, 20*time.Millisecond, 0.8) {
					got += s.Len()
				}
				if got < 450*time.Millisecond || got > 520*time.Millisecond {
					t.Errorf("%s heard %v Hz for %v, want 0.5 s", h.who, h.freq, got)
				}
				if spans := audio.ToneSpans(h.pcm, audio.Rate, h.other, 20*time.Millisecond, 0.5); len(spans) > 0 {
					t.Errorf("%s heard its own %v Hz", h.who, h.other)
				}
			}
		})
	}
}
