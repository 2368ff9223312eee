package telephony

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// answerAndWait is an onCall that answers, plays a short 2 kHz tone and lets the caller end
// the call; the legs it answered come on the channel.
func answerAndWait(legs chan<- *Leg) func(*Leg) {
	return func(l *Leg) {
		if legs != nil {
			legs <- l
		}
		ctx, cancel, ok := answerFor(l, 15*time.Second)
		defer cancel()
		if !ok {
			return
		}
		_ = l.Play(ctx, tone(2000, 300*time.Millisecond, 8000))
		select {
		case <-l.Done():
		case <-ctx.Done():
			_ = l.Hangup()
		}
	}
}

// runRaw runs the caller scenario d against s.
func runRaw(t *testing.T, s *Server, d *testpeer.Dialog) testpeer.Result {
	t.Helper()
	res, err := testpeer.Raw{Target: s.Addr(), XML: d.XML(), Timeout: 15 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	return res
}

// final returns the final responses the caller received to method, in order.
func final(res testpeer.Result, method string) []testpeer.Message {
	var out []testpeer.Message
	for _, m := range testpeer.Messages(res.Trace) {
		if m.Received && m.Status >= 200 && m.Method == method {
			out = append(out, m)
		}
	}
	return out
}

// Every INVITE is checked before it rings: what ivrd cannot take gets the right refusal (with
// the right headers), and what it can take is answered, whatever form its offer comes in.
func TestInviteOffers(t *testing.T) {
	t.Parallel()
	legs := make(chan *Leg, 16)
	s := startServer(t, answerAndWait(legs))
	g729 := testpeer.AudioSDP(1, "127.0.0.1", "RTP/AVP", "18 101", "a=rtpmap:18 G729/8000", "a=rtpmap:101 telephone-event/8000")
	isup := "multipart/mixed;boundary=unique-boundary-1"
	multipart := "--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n" + strings.ReplaceAll(testpeer.G711SDP(1), "\n", "\r\n") +
		"\r\n--unique-boundary-1\r\nContent-Type: application/isup;version=itu-t92+\r\nContent-Disposition: signal;handling=optional\r\n\r\n" +
		"\x01\x11\x49\x02\x03\x02\x07\x04\x10\x33\x63\x21\x43\x03\x06\x0d\x03\x80\x90\xa2\x07\x03\x10\x03\x63\x53\x10\x0a\x07\x03\x10\x27\x80\x88\x90" + // (sipp cannot send NUL bytes)
		"\r\n--unique-boundary-1--\r\n"
	video := testpeer.G711SDP(1) + "m=video 9000 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
	tests := []struct {
		name       string
		user       string
		headers    []string
		ct, body   string
		want       int
		wantHeader map[string]string // in the final response
		wantTo     string            // the leg's To, for answered calls
	}{
		{name: "G.729 with telephone-event", body: g729, want: 488},
		{name: "no audio", body: strings.Replace(testpeer.G711SDP(1), "m=audio", "m=video", 1), want: 488},
		{name: "SRTP over UDP", body: testpeer.AudioSDP(1, "127.0.0.1", "RTP/SAVP", "0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"), want: 488},
		{name: "broken c= line", body: strings.Replace(testpeer.G711SDP(1), "c=IN IP4 127.0.0.1", "c=IN IP4", 1), want: 400},
		{name: "Require 100rel", headers: []string{"Require: 100rel", "Supported: 100rel"}, body: testpeer.G711SDP(1), want: 420,
			wantHeader: map[string]string{"Unsupported": "100rel"}},
		{name: "PCMU", body: testpeer.G711SDP(1), want: 200,
			wantHeader: map[string]string{"Allow": "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE", "Supported": "", "Content-Type": "application/sdp"}, wantTo: "+6561234567"},
		{name: "SDP with ISUP (SIP-I)", ct: isup, body: multipart, want: 200, wantTo: "+6561234567"},
		{name: "audio and video", body: video, want: 200, wantTo: "+6561234567"},
		{name: "percent-encoded user", user: "%2B6561234567", body: testpeer.G711SDP(1), want: 200, wantTo: "+6561234567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := tt.user
			if user == "" {
				user = "6561234567"
			}
			ct := tt.ct
			if ct == "" {
				ct = "application/sdp"
			}
			d := testpeer.NewDialog(user, "6511111111").Invite(tt.headers, ct, tt.body).Expect(tt.want)
			if tt.want == 200 {
				d.Ack("").Pause(600 * time.Millisecond).Bye()
			}
			res := runRaw(t, s, d)
			got := final(res, "INVITE")
			if len(got) == 0 || got[0].Status != tt.want {
				t.Fatalf("final responses %+v, want %d\n%s", got, tt.want, res.Trace)
			}
			for h, want := range tt.wantHeader {
				if v, ok := got[0].Header(h); !ok || v != want {
					t.Errorf("%d's %s: %q (present %v), want %q", tt.want, h, v, ok, want)
				}
			}
			if tt.want != 200 {
				return
			}
			l := <-legs
			if l.To() != tt.wantTo {
				t.Errorf("To = %q, want %q", l.To(), tt.wantTo)
			}
			answer := got[0].Body()
			if strings.Count(answer, "m=") != strings.Count(tt.body, "m=") || !strings.Contains(answer, "m=audio ") {
				t.Errorf("answer does not answer every stream:\n%s", answer)
			}
			if strings.Contains(tt.body, "m=video") && !strings.Contains(answer, "m=video 0 ") {
				t.Errorf("video not declined:\n%s", answer)
			}
			if n := toneLen(res.Heard, 2000); n < 250*time.Millisecond {
				t.Errorf("caller heard the 300 ms prompt for %v", n)
			}
		})
	}
}

// toneLen is how long freq sounds in pcm (40 ms windows).
func toneLen(pcm []int16, freq float64) time.Duration {
	var d time.Duration
	for _, s := range audio.ToneSpans(pcm, audio.Rate, freq, 40*time.Millisecond, 0.5) {
		d += s.Len()
	}
	return d
}
