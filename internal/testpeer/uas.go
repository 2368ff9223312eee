package testpeer

import (
	"fmt"
	"strings"
)

// Answerer modes.
const (
	ModeAnswer   = "answer"   // 180, then 200 OK with SDP; runs the script
	ModeBusy     = "busy"     // 486 Busy Here
	ModeNoAnswer = "noanswer" // 180 Ringing until the caller CANCELs (200, then 487)
	ModeDecline  = "decline"  // 603 Decline
	ModeRedirect = "redirect" // 302 Moved Temporarily to RedirectTo
)

// uasParams is what the answerer's scenario needs besides the Answerer itself.
type uasParams struct {
	mediaPort int    // where the answerer receives RTP (our own socket)
	dir       string // for audio files
}

// ackWait bounds the wait for the ACK of a failure response: sipgo sends it from its
// transaction layer, but a caller that gave up may never do.
const ackWait = 5000

// scenario writes the UAS scenario for a.
//
// sipp traps (UAS side):
//   - Responses must carry the same To tag throughout ([pid]SIPpTag01[call_number] here).
//   - The 487 after a CANCEL answers the INVITE: the CANCEL carries the INVITE's Via branch and
//     CSeq number, so last_Via and last_cseq_number give the right values, with method INVITE.
//   - For our own in-dialog requests (BYE, INFO) From and To swap: the INVITE's From and To
//     header values are captured with ereg and reused ([$caller], [$callee]). [next_url] is
//     the INVITE's Contact (rrs on the INVITE).
//   - rtp_stream sends to the media address of the INVITE's SDP, before the 200 as well (early
//     media after our 183).
//   - Our 18x and 200 copy the INVITE's Record-Route ([last_Record-Route:] vanishes when there
//     is none), so that a caller behind a proxy sends its ACK and BYE through it.
func (a Answerer) scenario(p uasParams) (string, error) {
	mode := a.Mode
	if mode == "" {
		mode = ModeAnswer
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="ISO-8859-1" ?>` + "\n")
	b.WriteString(`<scenario name="ivrd testpeer answerer">` + "\n")
	if mode == ModeAnswer {
		// sipp refuses variables that are set but never used: Reference marks them used for
		// scripts that neither hang up nor send INFO.
		b.WriteString(`<recv request="INVITE" rrs="true">
<action>
<ereg regexp="[^ ].*" search_in="hdr" header="From:" assign_to="caller"/>
<ereg regexp="[^ ].*" search_in="hdr" header="To:" assign_to="callee"/>
</action>
</recv>
<Reference variables="caller,callee"/>
`)
	} else {
		b.WriteString(`<recv request="INVITE"/>` + "\n")
	}
	b.WriteString(response("100 Trying", false))
	switch mode {
	case ModeBusy, ModeDecline:
		status := "486 Busy Here"
		if mode == ModeDecline {
			status = "603 Decline"
		}
		b.WriteString(response(status, true))
		fmt.Fprintf(&b, `<recv request="ACK" timeout="%d" ontimeout="end"/>`+"\n", ackWait)
		b.WriteString(`<nop next="end"/>` + "\n")
	case ModeNoAnswer:
		b.WriteString(response("180 Ringing", true))
		b.WriteString(`<recv request="CANCEL"/>` + "\n")
		b.WriteString(response("200 OK", true)) // to the CANCEL
		b.WriteString(`<send><![CDATA[

SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [last_cseq_number] INVITE
Content-Length: 0

]]></send>
`)
		fmt.Fprintf(&b, `<recv request="ACK" timeout="%d" ontimeout="end"/>`+"\n", ackWait)
		b.WriteString(`<nop next="end"/>` + "\n")
	case ModeRedirect:
		if !strings.HasPrefix(a.RedirectTo, "sip:") || strings.ContainsAny(a.RedirectTo, "<>\r\n\"") {
			return "", fmt.Errorf("testpeer: redirect to %q: not a SIP URI", a.RedirectTo)
		}
		fmt.Fprintf(&b, `<send><![CDATA[

SIP/2.0 302 Moved Temporarily
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <%s>
Content-Length: 0

]]></send>
`, a.RedirectTo)
		fmt.Fprintf(&b, `<recv request="ACK" timeout="%d" ontimeout="end"/>`+"\n", ackWait)
		b.WriteString(`<nop next="end"/>` + "\n")
	case ModeAnswer:
		if len(a.EarlyMedia) == 0 {
			b.WriteString(response("180 Ringing", true))
		} else {
			b.WriteString(withSDP("183 Session Progress", "", 1, p.mediaPort, a.PCMA))
			if _, _, err := writeSteps(&b, scriptParams{steps: a.EarlyMedia, pcma: a.PCMA, dir: p.dir, prefix: "early"}); err != nil {
				return "", err
			}
		}
		// After early media the 200's SDP has a new session version, as some trunks send.
		b.WriteString(withSDP("200 OK", ` retrans="500"`, 2, p.mediaPort, a.PCMA))
		b.WriteString(`<recv request="ACK"/>` + "\n")
		dialog := "From: [$callee];tag=[pid]SIPpTag01[call_number]\nTo: [$caller]"
		if err := writeScript(&b, scriptParams{
			steps: a.Script, hangupAfter: a.HangupAfter, pcma: a.PCMA, dir: p.dir, dialog: dialog, cseq: 0,
		}); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("testpeer: unknown answerer mode %q", a.Mode)
	}
	b.WriteString(`<label id="end"/>
</scenario>
`)
	return b.String(), nil
}

// withSDP is a response to the INVITE carrying our SDP (audio to mediaPort), with the given
// session version.
func withSDP(status, attrs string, version, mediaPort int, pcma bool) string {
	return fmt.Sprintf(`<send%s><![CDATA[

SIP/2.0 %s
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:answerer@[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

%s
]]></send>
`, attrs, status, sdpBody(2, version, mediaPort, pcma))
}

// sdpBody is the SDP of sipp's side of a call: G.711 (PCMA or PCMU) and telephone-event,
// audio received on mediaPort, ending with an empty line.
func sdpBody(session, version, mediaPort int, pcma bool) string {
	pt, codec := 0, "PCMU"
	if pcma {
		pt, codec = 8, "PCMA"
	}
	return fmt.Sprintf(`v=0
o=- %[1]d %[2]d IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio %[3]d RTP/AVP %[4]d 101
a=rtpmap:%[4]d %[5]s/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
`, session, version, mediaPort, pt, codec)
}

// response is a response to the last request received, with our To tag when tagged.
func response(status string, tagged bool) string {
	tag := ""
	if tagged {
		tag = ";tag=[pid]SIPpTag01[call_number]"
	}
	return `<send><![CDATA[

SIP/2.0 ` + status + `
[last_Via:]
[last_From:]
[last_To:]` + tag + `
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:answerer@[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
`
}
