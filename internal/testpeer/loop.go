package testpeer

import (
	"fmt"
	"time"
)

// ackAfter200 is the ACK of an INVITE's 200 OK, following its Record-Route.
const ackAfter200 = `<send><![CDATA[

ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
[routes]
Max-Forwards: 70
Content-Length: 0

]]></send>
`

// LoopScenario is a sipp caller scenario for load: each call INVITEs the service (-s) from
// the user in field0 of the injection file (-inf), with SDP naming rtpPort on 127.0.0.1 (the
// same for every call, so one socket receives all the server's RTP), streams audioFile
// (headerless µ-law) in a loop from the ACK on, and hangs up after hold. A BYE from the
// server, or any response not expected, fails the call.
//
// sipp traps: rtp_stream returns at once and loops (-1) until the call ends; the file name
// must hold no comma.
func LoopScenario(audioFile string, hold time.Duration, rtpPort int) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ivrd load caller">
<send retrans="500"><![CDATA[

INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio %d RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv

]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rrs="true"/>
%s<nop><action><exec rtp_stream="%s,-1,0"/></action></nop>
<pause milliseconds="%d"/>
<send retrans="500"><![CDATA[

BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 2 BYE
[routes]
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
</scenario>
`, rtpPort, ackAfter200, audioFile, hold.Milliseconds())
}
