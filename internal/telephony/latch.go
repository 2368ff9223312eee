package telephony

import (
	"encoding/binary"
	"net/netip"
)

// latchPackets is how many consecutive, in-sequence packets of one SSRC a source must send
// before ivrd takes it as the caller's (or, from the caller's address, as a new stream of the
// caller's): 40 ms of audio is lost, an injector that sends now and then never wins.
const latchPackets = 3

// maxStreams is how many SSRCs ivrd accepts from the latched address at once (an audio
// stream, and e.g. a telephone-event stream some peers send with an SSRC of its own).
const maxStreams = 4

// latch decides which RTP packets of a call are the caller's (symmetric RTP, RFC 4961 as
// SBCs practise it: "latching"). Before it has latched it accepts the first packet from the
// address the SDP names, or the first few in-sequence packets of one SSRC from the SDP's IP
// address or the IP the caller's SIP requests came from (a caller behind NAT: its RTP comes
// from its public address, not the private one in its SDP). Once latched it accepts packets
// from that address only, with its SSRC, or with a new SSRC that has shown the same run of
// in-sequence packets. Packets from any other address or source are dropped. reset starts
// over (a re-INVITE or UPDATE with new media).
//
// A latch is used by one goroutine at a time (the call's pacer, which reads its RTP).
type latch struct {
	sdp    netip.AddrPort // where the SDP says the caller's RTP is
	sigIP  netip.Addr     // where the caller's SIP requests came from
	addr   netip.AddrPort // the latched address; invalid until latched
	ssrcs  [maxStreams]uint32
	nssrc  int
	next   int // ssrcs slot to replace when full
	cand   candidate
	latchN uint64 // how many times it latched (for tests and logs)
}

// candidate is a source proving itself: count packets of ssrc from addr, seq the last one's.
type candidate struct {
	addr  netip.AddrPort
	ssrc  uint32
	seq   uint16
	count int
}

// rtpHeader reads the SSRC and sequence number of an RTP (or SRTP: its header is in clear)
// packet. ok is false for anything that is not RTP version 2 with a whole header.
func rtpHeader(b []byte) (ssrc uint32, seq uint16, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b[8:12]), binary.BigEndian.Uint16(b[2:4]), true
}

// reset forgets the latched source; sdp and sigIP are where the new media is expected from.
func (l *latch) reset(sdp netip.AddrPort, sigIP netip.Addr) {
	*l = latch{sdp: sdp, sigIP: sigIP, latchN: l.latchN}
}

// latched returns the latched address, invalid when none.
func (l *latch) latched() netip.AddrPort { return l.addr }

// accept reports whether a packet from `from` with ssrc and seq is the caller's, and whether
// it latched a new address just now.
func (l *latch) accept(from netip.AddrPort, ssrc uint32, seq uint16) (ok, latchedNow bool) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if l.addr.IsValid() {
		if from != l.addr {
			return false, false
		}
		for _, s := range l.ssrcs[:l.nssrc] {
			if s == ssrc {
				return true, false
			}
		}
		if l.prove(from, ssrc, seq) {
			l.addSSRC(ssrc)
			return true, false
		}
		return false, false
	}
	switch {
	case from == l.sdp:
	case from.Addr() == l.sdp.Addr() || from.Addr() == l.sigIP:
		if !l.prove(from, ssrc, seq) {
			return false, false
		}
	default:
		return false, false
	}
	l.addr = from
	l.addSSRC(ssrc)
	l.latchN++
	return true, true
}

// prove counts a candidate's packet and reports whether it has sent latchPackets in a row.
// A repeated sequence number (RFC 4733 end packets are sent three times) neither counts nor
// breaks the run.
func (l *latch) prove(from netip.AddrPort, ssrc uint32, seq uint16) bool {
	c := &l.cand
	switch {
	case c.count > 0 && c.addr == from && c.ssrc == ssrc && seq == c.seq+1:
		c.count++
		c.seq = seq
	case c.count > 0 && c.addr == from && c.ssrc == ssrc && seq == c.seq:
	default:
		*c = candidate{addr: from, ssrc: ssrc, seq: seq, count: 1}
	}
	if c.count >= latchPackets {
		*c = candidate{}
		return true
	}
	return false
}

func (l *latch) addSSRC(ssrc uint32) {
	if l.nssrc < maxStreams {
		l.ssrcs[l.nssrc] = ssrc
		l.nssrc++
		return
	}
	l.ssrcs[l.next] = ssrc
	l.next = (l.next + 1) % maxStreams
}
