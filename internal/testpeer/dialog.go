package testpeer

import (
	"fmt"
	"strings"
	"time"
)

// Dialog writes the XML of a Raw caller scenario one SIP exchange at a time: an INVITE with
// whatever headers and body a test needs, the responses it expects, ACKs, re-INVITEs,
// UPDATEs, pauses and the hang-up. Every request it writes is in the same dialog (Call-ID,
// From tag), numbered by its CSeq.
type Dialog struct {
	number, from string
	b            strings.Builder
	cseq         int
	invite       int    // CSeq of the last INVITE, for its ACK
	last         string // method of the last request sent
	ruri         string // Request-URI of the last INVITE
}

// NewDialog starts a scenario calling number (the Request-URI and To user, written as it is:
// escape it yourself) from the user from.
func NewDialog(number, from string) *Dialog {
	d := &Dialog{number: number, from: from}
	d.b.WriteString(`<?xml version="1.0" encoding="ISO-8859-1" ?>` + "\n<scenario name=\"ivrd testpeer raw\">\n")
	return d
}

// AudioSDP is a session description offering audio on the receiver's port ({{rtp_port}}) at
// ip: o= version, m= proto and formats, then the attribute lines (e.g. "a=rtpmap:0
// PCMU/8000", "a=inactive").
func AudioSDP(version int, ip, proto, formats string, attrs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\no=- 1 %d IN IP4 127.0.0.1\ns=-\nc=IN IP4 %s\nt=0 0\nm=audio {{rtp_port}} %s %s\n", version, ip, proto, formats)
	for _, a := range attrs {
		b.WriteString(a + "\n")
	}
	return b.String()
}

// G711SDP offers PCMU and telephone-event at 127.0.0.1, sendrecv unless attrs say otherwise.
func G711SDP(version int, attrs ...string) string {
	return AudioSDP(version, "127.0.0.1", "RTP/AVP", "0 101", append([]string{"a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"}, attrs...)...)
}

func (d *Dialog) dialogHeaders(withTo bool) string {
	to := fmt.Sprintf("To: <sip:%s@[remote_ip]:[remote_port]>", d.number)
	if withTo {
		to += "[peer_tag_param]"
	}
	return fmt.Sprintf("From: <sip:%s@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n%s\nCall-ID: [call_id]", d.from, to)
}

func body(contentType, b string) string {
	if b == "" {
		return "Content-Length: 0\n\n"
	}
	return "Content-Type: " + contentType + "\nContent-Length: [len]\n\n" + b
}

// Invite sends the call's INVITE (a new CSeq) with the extra header lines and body (no body:
// a late offer); branch, when set, replaces the Via branch (e.g. to send the same INVITE by
// "another path").
func (d *Dialog) Invite(headers []string, contentType, b string) *Dialog {
	return d.inviteAs(d.nextCSeq(), "[branch]", headers, contentType, b)
}

// InviteAgain sends the last INVITE again (same CSeq) with another Via branch: a merged
// request (RFC 3261 §8.2.2.2).
func (d *Dialog) InviteAgain(headers []string, contentType, b string) *Dialog {
	return d.inviteAs(d.invite, "z9hG4bK-merged-[call_number]", headers, contentType, b)
}

func (d *Dialog) inviteAs(cseq int, branch string, headers []string, contentType, b string) *Dialog {
	d.invite, d.last, d.ruri = cseq, "INVITE", fmt.Sprintf("sip:%s@[remote_ip]:[remote_port]", d.number)
	extra := ""
	for _, h := range headers {
		extra += h + "\n"
	}
	fmt.Fprintf(&d.b, `<send retrans="500"><![CDATA[

INVITE sip:%s@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=%s
%s
CSeq: %d INVITE
Contact: <sip:%s@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
%s%s
]]></send>
`, d.number, branch, d.dialogHeaders(false), cseq, d.from, extra, body(contentType, b))
	return d
}

// Ringing waits for 180 Ringing (after an optional 100 Trying).
func (d *Dialog) Ringing() *Dialog {
	d.b.WriteString("<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\"/>\n")
	return d
}

// Expect waits for a final response code to the last request, skipping provisional ones. A
// 2xx to an INVITE records the route set (for in-dialog requests); a failure to an INVITE is
// ACKed at once.
func (d *Dialog) Expect(code int) *Dialog {
	for _, p := range []int{100, 180, 183} {
		fmt.Fprintf(&d.b, "<recv response=\"%d\" optional=\"true\"/>\n", p)
	}
	if code < 300 {
		fmt.Fprintf(&d.b, "<recv response=\"%d\" rrs=\"true\"/>\n", code)
		return d
	}
	fmt.Fprintf(&d.b, "<recv response=\"%d\"/>\n", code)
	if d.last == "INVITE" {
		// In the INVITE's transaction: its Via branch, which the response carries.
		fmt.Fprintf(&d.b, `<send><![CDATA[

ACK %s SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: %d ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
`, d.ruri, d.invite)
	}
	return d
}

// Ack acknowledges the last INVITE's 2xx, with an SDP body (the answer to a late offer) or
// none.
func (d *Dialog) Ack(sdp string) *Dialog {
	d.last = "ACK"
	fmt.Fprintf(&d.b, `<send><![CDATA[

ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
%s
CSeq: %d ACK
[routes]
Max-Forwards: 70
%s
]]></send>
`, d.dialogHeaders(true), d.invite, body("application/sdp", sdp))
	return d
}

// Reinvite sends a re-INVITE in the call, with an SDP offer or none.
func (d *Dialog) Reinvite(sdp string) *Dialog {
	d.invite = d.nextCSeq()
	return d.inDialog("INVITE", d.invite, "application/sdp", sdp)
}

// Update sends an UPDATE in the call, with an SDP offer or none.
func (d *Dialog) Update(sdp string) *Dialog {
	return d.inDialog("UPDATE", d.nextCSeq(), "application/sdp", sdp)
}

func (d *Dialog) inDialog(method string, cseq int, contentType, b string) *Dialog {
	d.b.WriteString(d.request(method, cseq, "[branch]", contentType, b))
	return d
}

// request writes an in-dialog request (sent with retransmissions) with Via branch branch.
func (d *Dialog) request(method string, cseq int, branch, contentType, b string) string {
	d.last = method
	if method == "INVITE" {
		d.ruri = "[next_url]"
	}
	return fmt.Sprintf(`<send retrans="500"><![CDATA[

%s [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=%s
%s
CSeq: %d %s
Contact: <sip:%s@[local_ip]:[local_port];transport=[transport]>
[routes]
Max-Forwards: 70
%s
]]></send>
`, method, branch, d.dialogHeaders(true), cseq, method, d.from, body(contentType, b))
}

// Pause waits d.
func (d *Dialog) Pause(p time.Duration) *Dialog {
	fmt.Fprintf(&d.b, "<pause milliseconds=\"%d\"/>\n", p.Milliseconds())
	return d
}

// Bye hangs up and waits for the 200.
func (d *Dialog) Bye() *Dialog {
	d.inDialog("BYE", d.nextCSeq(), "", "")
	d.b.WriteString("<recv response=\"200\"/>\n")
	return d
}

// ByeCrossing hangs up and waits for the 200, answering 200 OK to a BYE of the server's that
// crosses ours (a server restarting ends the calls it finds). sipp stops retransmitting its
// BYE once the server's arrives; a real UA does not, so the BYE is then sent again, as the
// same transaction (its branch is fixed), until the 200 comes.
func (d *Dialog) ByeCrossing() *Dialog {
	bye := d.request("BYE", d.nextCSeq(), "z9hG4bK-bye-[call_number]", "", "")
	d.b.WriteString(bye + `<recv request="BYE" optional="true" next="theirs"/>
<recv response="200" next="crossed"/>
<label id="theirs"/>
` + answerLast + bye + `<recv response="200"/>
<label id="crossed"/>
`)
	return d
}

// AwaitBye waits for the server's BYE and answers it 200 OK.
func (d *Dialog) AwaitBye() *Dialog {
	d.b.WriteString(awaitBye)
	return d
}

func (d *Dialog) nextCSeq() int {
	d.cseq++
	return d.cseq
}

// XML returns the scenario.
func (d *Dialog) XML() string {
	return d.b.String() + "</scenario>\n"
}
