package testpeer

// EchoScenario is a sipp answerer scenario for load: it answers every INVITE (100, then 200
// OK with PCMU SDP naming mediaPort, copying the INVITE's Record-Route so that the caller's
// ACK and BYE come back through a proxy) and waits for the caller's BYE. No 180: a proxy's
// workers may relay a 180 after the 200 that followed it, which LoopScenario's caller
// rightly takes as an unexpected message. Run it with
// sipp's -rtp_echo and -mp mediaPort: sipp then sends every RTP packet it receives back to
// where it came from, so both directions of each call carry audio.
func EchoScenario(mediaPort int) string {
	return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ivrd load answerer (RTP echo)">
<recv request="INVITE" rrs="true"/>
` + response("100 Trying", false) +
		withSDP("200 OK", ` retrans="500"`, 1, mediaPort, false) + `<recv request="ACK"/>
<recv request="BYE"/>
` + response("200 OK", false) + `</scenario>
`
}
