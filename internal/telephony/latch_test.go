package telephony

import (
	"net/netip"
	"testing"
)

type latchPkt struct {
	from string
	ssrc uint32
	seq  uint16
	ok   bool // accepted
}

func TestLatch(t *testing.T) {
	const sdp, sig = "192.0.2.10:4000", "203.0.113.5"
	tests := []struct {
		name    string
		pkts    []latchPkt
		latched string // at the end
	}{
		{"from the SDP address: at once", []latchPkt{{sdp, 1, 10, true}, {sdp, 1, 11, true}}, sdp},
		{"behind NAT: the SIP source's IP after three in sequence", []latchPkt{
			{"203.0.113.5:31000", 7, 100, false}, {"203.0.113.5:31000", 7, 101, false}, {"203.0.113.5:31000", 7, 102, true},
			{"203.0.113.5:31000", 7, 103, true}}, "203.0.113.5:31000"},
		{"the SDP's IP on another port (asymmetric RTP)", []latchPkt{
			{"192.0.2.10:5000", 7, 1, false}, {"192.0.2.10:5000", 7, 2, false}, {"192.0.2.10:5000", 7, 3, true}}, "192.0.2.10:5000"},
		{"another IP never latches", []latchPkt{
			{"198.51.100.9:4000", 7, 1, false}, {"198.51.100.9:4000", 7, 2, false}, {"198.51.100.9:4000", 7, 3, false}, {"198.51.100.9:4000", 7, 4, false}}, ""},
		{"a run broken by a gap starts over", []latchPkt{
			{"203.0.113.5:31000", 7, 1, false}, {"203.0.113.5:31000", 7, 2, false}, {"203.0.113.5:31000", 7, 9, false},
			{"203.0.113.5:31000", 7, 10, false}, {"203.0.113.5:31000", 7, 11, true}}, "203.0.113.5:31000"},
		{"an interleaved injector keeps both from latching", []latchPkt{
			{"203.0.113.5:31000", 7, 1, false}, {"203.0.113.5:40000", 8, 1, false}, {"203.0.113.5:31000", 7, 2, false},
			{"203.0.113.5:40000", 8, 2, false}}, ""},
		{"latched: other address and other SSRC dropped", []latchPkt{
			{sdp, 1, 10, true}, {"192.0.2.10:4002", 1, 11, false}, {"203.0.113.5:31000", 1, 12, false}, {sdp, 99, 5, false}, {sdp, 1, 12, true}}, sdp},
		{"latched: a new stream of the caller's after three in sequence", []latchPkt{
			{sdp, 1, 10, true}, {sdp, 2, 500, false}, {sdp, 1, 11, true}, {sdp, 2, 501, false}, {sdp, 2, 502, true}, {sdp, 1, 12, true}, {sdp, 2, 503, true}}, sdp},
		{"repeated sequence numbers (RFC 4733 end packets) neither count nor break", []latchPkt{
			{sdp, 1, 10, true}, {sdp, 2, 7, false}, {sdp, 2, 7, false}, {sdp, 2, 8, false}, {sdp, 2, 8, false}, {sdp, 2, 9, true}}, sdp},
		{"sequence numbers wrap", []latchPkt{
			{"203.0.113.5:31000", 7, 65534, false}, {"203.0.113.5:31000", 7, 65535, false}, {"203.0.113.5:31000", 7, 0, true}}, "203.0.113.5:31000"},
		{"IPv4-mapped source", []latchPkt{{"[::ffff:192.0.2.10]:4000", 1, 1, true}}, sdp},
	}
	for _, tt := range tests {
		var l latch
		l.reset(netip.MustParseAddrPort(sdp), netip.MustParseAddr(sig))
		for i, p := range tt.pkts {
			if ok, _ := l.accept(netip.MustParseAddrPort(p.from), p.ssrc, p.seq); ok != p.ok {
				t.Errorf("%s: packet %d (%s ssrc %d seq %d) accepted %v, want %v", tt.name, i, p.from, p.ssrc, p.seq, ok, p.ok)
			}
		}
		got := ""
		if a := l.latched(); a.IsValid() {
			got = a.String()
		}
		if got != tt.latched {
			t.Errorf("%s: latched %q, want %q", tt.name, got, tt.latched)
		}
	}
}

// A reset (new media) forgets the latched source: the caller's new address latches.
func TestLatchReset(t *testing.T) {
	var l latch
	l.reset(netip.MustParseAddrPort("192.0.2.10:4000"), netip.MustParseAddr("203.0.113.5"))
	if ok, now := l.accept(netip.MustParseAddrPort("192.0.2.10:4000"), 1, 1); !ok || !now {
		t.Fatal("first packet not latched")
	}
	l.reset(netip.MustParseAddrPort("192.0.2.20:6000"), netip.MustParseAddr("203.0.113.5"))
	if ok, _ := l.accept(netip.MustParseAddrPort("192.0.2.10:4000"), 1, 2); ok {
		t.Error("old address accepted after the reset")
	}
	if ok, now := l.accept(netip.MustParseAddrPort("192.0.2.20:6000"), 3, 1); !ok || !now || l.latchN != 2 {
		t.Errorf("new address: ok %v now %v latches %d", ok, now, l.latchN)
	}
}

func TestRTPHeader(t *testing.T) {
	b := []byte{0x80, 0x00, 0x12, 0x34, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}
	if ssrc, seq, ok := rtpHeader(b); !ok || ssrc != 0xdeadbeef || seq != 0x1234 {
		t.Errorf("got %x %x %v", ssrc, seq, ok)
	}
	for _, bad := range [][]byte{b[:11], {0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil} {
		if _, _, ok := rtpHeader(bad); ok {
			t.Errorf("%x read as RTP", bad)
		}
	}
}
