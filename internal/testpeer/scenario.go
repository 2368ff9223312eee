package testpeer

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// Step is one action of a call's script, run in order after the ACK.
type Step struct {
	kind  stepKind
	pause time.Duration
	pcm   []int16
	digit rune
}

type stepKind uint8

const (
	stepPause stepKind = iota
	stepAudio
	stepDTMF
	stepInfo
)

// Pause waits d sending no RTP at all.
func Pause(d time.Duration) Step { return Step{kind: stepPause, pause: d} }

// SendAudio sends pcm (8 kHz) as RTP in the negotiated G.711, paced in real time by sipp's
// rtp_stream; the step lasts as long as the audio.
func SendAudio(pcm []int16) Step { return Step{kind: stepAudio, pcm: pcm} }

// SendDTMF sends one key (0-9, * or #) as RFC 4733 events on payload type 101, by replaying
// sipp's shipped /usr/share/sip-tester/dtmf_2833_*.pcap, then waits dtmfStep. Those pcaps
// start with a duration-0 packet and end with three end packets; all share one SSRC, and a
// key's timestamps are the same every time it is played.
func SendDTMF(digit rune) Step { return Step{kind: stepDTMF, digit: digit} }

// SendInfoDTMF sends one key out of band: SIP INFO with application/dtmf-relay ("Signal=5"),
// waiting for its 200 OK; the step lasts infoStep.
func SendInfoDTMF(digit rune) Step { return Step{kind: stepInfo, digit: digit} }

const infoStep = 200 * time.Millisecond

// SendDTMFs sends each key of keys with SendDTMF.
func SendDTMFs(keys string) []Step {
	steps := make([]Step, 0, len(keys))
	for _, k := range keys {
		steps = append(steps, SendDTMF(k))
	}
	return steps
}

// dtmfStep is how long a SendDTMF step lasts: the pcap plays for 140 ms, and the receiver must
// see a pause (250 ms in ivrd) before a replay of the same pcap counts as a new press.
const dtmfStep = 500 * time.Millisecond

// PcapDir holds sipp's shipped DTMF pcaps (Debian package sip-tester).
var PcapDir = "/usr/share/sip-tester"

func dtmfPcap(digit rune) (string, error) {
	var name string
	switch {
	case digit >= '0' && digit <= '9':
		name = string(digit)
	case digit == '*':
		name = "star"
	case digit == '#':
		name = "pound"
	default:
		return "", fmt.Errorf("testpeer: no sipp pcap for DTMF key %q", digit)
	}
	return filepath.Join(PcapDir, "dtmf_2833_"+name+".pcap"), nil
}

// duration is how long the step takes in the scenario.
func (s Step) duration() time.Duration {
	switch s.kind {
	case stepAudio:
		return audio.Duration(len(s.pcm))
	case stepDTMF:
		return dtmfStep
	case stepInfo:
		return infoStep
	}
	return s.pause
}

// scenarioParams is what the scenario XML needs besides the call itself.
type scenarioParams struct {
	host, port string // target
	mediaPort  int    // where the caller receives RTP (our own socket)
	dir        string // for audio files
}

// failureCodes are the final responses the scenario accepts instead of 200 (and ACKs). sipp
// cannot match a response class, only exact codes; another code aborts the sipp call
// (the Result still reports it from the message trace).
var failureCodes = []int{
	300, 301, 302, 305, 380,
	400, 401, 402, 403, 404, 405, 406, 407, 408, 410, 413, 414, 415, 416, 420, 421, 423,
	480, 481, 482, 483, 484, 485, 486, 487, 488, 491, 493,
	500, 501, 502, 503, 504, 505, 513,
	600, 603, 604, 606,
}

// scenario writes the UAC scenario for c: INVITE, optional provisional responses, then either
// a failure (ACKed) or 200 (ACKed), the script, and the hangup.
//
// sipp traps, found the hard way:
//   - After the ACK, a BYE from the server that arrives while the scenario is in a <pause>
//     (or anywhere but a <recv request="BYE">) is "unexpected": sipp's default behaviour
//     answers it 200 OK and aborts the call, which then counts as failed (exit status 1).
//     We therefore read the outcome from the message trace, not from sipp's exit status.
//   - <exec rtp_stream> and <exec play_pcap_audio> return at once; the scenario must pause
//     for the media's length itself.
//   - rtp_stream files are headerless G.711 and are cached by name; the file name must not
//     contain a comma (it separates the arguments "file,loops,payload type").
//   - play_dtmf (sipp 3.6.1) sends PT 96/97 regardless of the SDP: useless, so we replay pcaps.
func (c Call) scenario(p scenarioParams) (string, error) {
	from := c.From
	if from == "" {
		from = "sipp"
	}
	uri := fmt.Sprintf("sip:%s@%s:%s", c.Number, p.host, p.port)

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="ISO-8859-1" ?>` + "\n")
	b.WriteString(`<scenario name="ivrd testpeer">` + "\n")
	fmt.Fprintf(&b, `<send retrans="500"><![CDATA[

INVITE %[1]s SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:%[2]s@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <%[1]s>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:%[2]s@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

%[3]s
]]></send>
`, uri, from, sdpBody(1, 1, p.mediaPort, c.PCMA))
	if c.CancelAfter > 0 {
		// The CANCEL must match the INVITE's Via branch: the 180 just received carries it.
		fmt.Fprintf(&b, `<recv response="100" optional="true"/>
<recv response="180"/>
<pause milliseconds="%d"/>
<send><![CDATA[

CANCEL %[2]s SIP/2.0
[last_Via:]
[last_From:]
To: <%[2]s>
[last_Call-ID:]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
<recv response="487" next="failed"/>
`, c.CancelAfter.Milliseconds(), uri)
	}
	b.WriteString(`<recv response="100" optional="true"/>` + "\n")
	b.WriteString(`<recv response="180" optional="true"/>` + "\n")
	b.WriteString(`<recv response="183" optional="true"/>` + "\n")
	for _, code := range failureCodes {
		fmt.Fprintf(&b, `<recv response="%d" optional="true" next="failed"/>`+"\n", code)
	}
	b.WriteString(`<recv response="200" rrs="true"/>` + "\n")
	b.WriteString(ackAfter200)

	dialog := fmt.Sprintf("From: <sip:%s@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\nTo: <%s>[peer_tag_param]", from, uri)
	if err := writeScript(&b, scriptParams{
		steps: c.Script, hangupAfter: c.HangupAfter, pcma: c.PCMA, dir: p.dir, dialog: dialog, cseq: 1,
	}); err != nil {
		return "", err
	}

	// A failure response is ACKed in the INVITE transaction: same Via branch, hence last_Via.
	b.WriteString(`<label id="failed"/>
<send><![CDATA[

ACK ` + uri + ` SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
<label id="end"/>
</scenario>
`)
	return b.String(), nil
}

// xmlText escapes s for an XML attribute.
func xmlText(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	return r.Replace(s)
}
