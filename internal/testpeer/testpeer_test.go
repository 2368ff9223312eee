package testpeer

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

const sampleTrace = `----------------------------------------------- 2026-11-25 02:19:40.407789
UDP message sent (552 bytes):

INVITE sip:6500000001@127.0.0.1:49319 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-16503-1-0
CSeq: 1 INVITE
Content-Length:   0

----------------------------------------------- 2026-11-25 02:19:40.407889
UDP message received [332] bytes :

SIP/2.0 180 Ringing
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-11-25 02:19:40.407939
UDP message received [577] bytes :

SIP/2.0 200 OK
CSeq: 1 INVITE
Content-Type: application/sdp

v=0
c=IN IP4 127.0.0.1

----------------------------------------------- 2026-11-25 02:19:42.708537
UDP message received [384] bytes :

BYE sip:6511111111@127.0.0.1:5060 SIP/2.0
cseq: 2 bye
Content-Length: 0

----------------------------------------------- 2026-11-25 02:19:42.708669
UDP message sent (333 bytes):

SIP/2.0 200 OK
CSeq: 2 BYE
`

func TestParseTrace(t *testing.T) {
	msgs := parseTrace(sampleTrace)
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation(traceTime, "2026-11-25 "+s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	want := []traceMsg{
		{Received: false, Start: "INVITE sip:6500000001@127.0.0.1:49319 SIP/2.0", Method: "INVITE", At: at("02:19:40.407789")},
		{Received: true, Start: "SIP/2.0 180 Ringing", Method: "INVITE", At: at("02:19:40.407889")},
		{Received: true, Start: "SIP/2.0 200 OK", Method: "INVITE", At: at("02:19:40.407939")},
		{Received: true, Start: "BYE sip:6511111111@127.0.0.1:5060 SIP/2.0", Method: "BYE", At: at("02:19:42.708537")},
		{Received: false, Start: "SIP/2.0 200 OK", Method: "BYE", At: at("02:19:42.708669")},
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages: %+v", len(msgs), msgs)
	}
	if m := Messages(sampleTrace); len(m) != len(want) || m[2].Status != 200 || !strings.Contains(m[2].Body(), "c=IN IP4 127.0.0.1") {
		t.Errorf("Messages: %+v", m)
	} else if v, ok := m[3].Header("cseq"); !ok || v != "2 bye" {
		t.Errorf("BYE's CSeq = %q, %v", v, ok)
	}
	for i := range want {
		msgs[i].text = ""
		if msgs[i] != want[i] {
			t.Errorf("message %d = %+v, want %+v", i, msgs[i], want[i])
		}
	}
	o := readOutcome(msgs)
	if o.status != 200 || !o.byeFromServer || !o.answeredAt.Equal(want[2].At) || !o.byeAt.Equal(want[3].At) {
		t.Errorf("outcome = %+v", o)
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name   string
		msgs   []traceMsg
		status int
		bye    bool
	}{
		{"rejected", []traceMsg{{Received: true, Start: "SIP/2.0 100 Trying", Method: "INVITE"}, {Received: true, Start: "SIP/2.0 404 Not Found", Method: "INVITE"}}, 404, false},
		{"cancelled", []traceMsg{{Received: true, Start: "SIP/2.0 200 OK", Method: "CANCEL"}, {Received: true, Start: "SIP/2.0 487 Request Terminated", Method: "INVITE"}}, 487, false},
		{"our bye", []traceMsg{{Received: true, Start: "SIP/2.0 200 OK", Method: "INVITE"}, {Start: "BYE sip:x SIP/2.0", Method: "BYE"}, {Received: true, Start: "SIP/2.0 200 OK", Method: "BYE"}}, 200, false},
		{"no answer", []traceMsg{{Received: true, Start: "SIP/2.0 180 Ringing", Method: "INVITE"}}, 0, false},
		{"sent responses do not count", []traceMsg{{Start: "SIP/2.0 486 Busy Here", Method: "INVITE"}}, 0, false},
	}
	for _, tt := range tests {
		o := readOutcome(tt.msgs)
		if o.status != tt.status || o.byeFromServer != tt.bye {
			t.Errorf("%s: outcome = %+v; want %d, %v", tt.name, o, tt.status, tt.bye)
		}
	}
}

func FuzzParseTrace(f *testing.F) {
	f.Add(sampleTrace)
	f.Add("UDP message received [1] bytes :\n\nSIP/2.0 4")
	f.Fuzz(func(t *testing.T, s string) {
		o := readOutcome(parseTrace(s))
		if o.status != 0 && (o.status < 200 || o.status > 999) {
			t.Fatalf("status %d", o.status)
		}
		for _, m := range Messages(s) {
			if v, ok := m.Header("Via"); ok && strings.ContainsAny(v, "\r\n") {
				t.Fatalf("header value %q", v)
			}
			if len(m.Body()) > len(m.Text) {
				t.Fatal("body longer than the message")
			}
		}
	})
}

// The generated scenario is well-formed XML, cuts the script at HangupAfter, and writes the
// audio as raw G.711.
func TestScenario(t *testing.T) {
	dir := t.TempDir()
	pcm := make([]int16, audio.Samples(time.Second))
	for i := range pcm {
		pcm[i] = int16(i % 1000)
	}
	c := Call{
		Number: "6500000001", From: "6511111111", PCMA: true, HangupAfter: 1500 * time.Millisecond,
		Script: []Step{Pause(time.Second), SendAudio(pcm), SendDTMF('#'), SendInfoDTMF('5')},
	}
	s, err := c.scenario(scenarioParams{host: "127.0.0.1", port: "5060", mediaPort: 4000, dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(s))
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil } // ASCII
	for {
		if _, err := dec.Token(); err != nil {
			if err != io.EOF {
				t.Fatalf("scenario is not XML: %v\n%s", err, s)
			}
			break
		}
	}
	for _, want := range []string{
		`<pause milliseconds="1000"/>`, `rtp_stream="` + filepath.Join(dir, "audio1.pcma") + `,1,8"`,
		`<pause milliseconds="500"/>`, "m=audio 4000 RTP/AVP 8 101", "CSeq: 2 BYE", `<recv response="404" optional="true" next="failed"/>`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("scenario lacks %q", want)
		}
	}
	if strings.Contains(s, "dtmf_2833_pound") || strings.Contains(s, "INFO") {
		t.Errorf("steps after HangupAfter made it into the scenario")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "audio1.pcma"))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(pcm) || raw[5] != audio.LinearToAlaw(pcm[5]) {
		t.Errorf("audio file: %d bytes", len(raw))
	}

	if _, err := (Call{Number: "1", Script: []Step{SendDTMF('E')}}).scenario(scenarioParams{dir: dir}); err == nil {
		t.Error("key E accepted")
	}
}

func TestReceiverPlacement(t *testing.T) {
	r := &receiver{}
	now := time.Now()
	frame := func(v int16) []int16 {
		f := make([]int16, audio.FrameSamples)
		for i := range f {
			f[i] = v
		}
		return f
	}
	r.place(7, 1000, frame(1), now)
	r.place(7, 1160, frame(2), now)
	r.place(7, 1000+8000, frame(3), now) // after a 1 s pause
	r.place(7, 1320, frame(4), now)      // late packet
	r.place(9, 50, frame(5), now)        // new SSRC continues at the end
	pcm, first, n, _, _ := r.heard()
	if n != 5 || !first.Equal(now) {
		t.Fatalf("packets %d, first %v", n, first)
	}
	if len(pcm) != 8000+2*audio.FrameSamples {
		t.Fatalf("len %d", len(pcm))
	}
	checks := map[int]int16{0: 1, 160: 2, 320: 4, 480: 0, 8000: 3, 8160: 5}
	for i, want := range checks {
		if pcm[i] != want {
			t.Errorf("pcm[%d] = %d, want %d", i, pcm[i], want)
		}
	}
}

func TestSafeUser(t *testing.T) {
	for s, want := range map[string]bool{"6500": true, "+65-1": true, "alice.b": true, "": false, "a b": false, "a]]>": false, "x<y": false} {
		if safeUser(s) != want {
			t.Errorf("safeUser(%q) = %v", s, !want)
		}
	}
}
