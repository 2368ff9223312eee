package telephony

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// The port range hands out even/odd pairs round robin, skips pairs in use, and says when none
// is left.
func TestPortRange(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	// Find a free stretch of 6 ports starting even.
	var base int
	for p := 42000; p < 60000; p += 6 {
		free := true
		for q := p; q < p+6 && free; q++ {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(q))))
			if err != nil {
				free = false
				continue
			}
			c.Close()
		}
		if free {
			base = p
			break
		}
	}
	if base == 0 {
		t.Skip("no free ports")
	}
	r := &portRange{low: base, high: base + 5}                                                         // three pairs
	busy, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(base+3)))) // the second pair's RTCP
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var got []int
	var conns []io.Closer
	for range 2 {
		rtp, rtcp, err := r.listen(ip)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, rtp, rtcp)
		p := rtp.LocalAddr().(*net.UDPAddr).Port
		if rtcp.LocalAddr().(*net.UDPAddr).Port != p+1 {
			t.Errorf("RTCP on %v, RTP on %d", rtcp.LocalAddr(), p)
		}
		got = append(got, p)
	}
	if got[0] != base || got[1] != base+4 {
		t.Errorf("pairs at %v, want %d and %d (the one between is busy)", got, base, base+4)
	}
	if _, _, err := r.listen(ip); !errors.Is(err, errNoPorts) {
		t.Errorf("a fourth pair: %v, want errNoPorts", err)
	}
	conns[0].Close()
	conns[1].Close()
	rtp, rtcp, err := r.listen(ip) // the first pair again, after wrapping round
	if err != nil || rtp.LocalAddr().(*net.UDPAddr).Port != base {
		t.Fatalf("after freeing the first pair: %v, %v", rtp, err)
	}
	rtp.Close()
	rtcp.Close()
	conns[2].Close()
	conns[3].Close()
}

// With ExternalIP ivrd advertises that address, not the bound one: in the 200's Contact and
// SDP c= line, and in the Via and Contact of its BYE.
func TestExternalIP(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, Config{ExternalIP: "127.0.0.2"}, func(l *Leg) {
		_, cancel, ok := answerFor(l, 10*time.Second)
		defer cancel()
		if ok {
			time.Sleep(200 * time.Millisecond)
			_ = l.Hangup()
		}
	})
	// sipp sends everything to the server's bound address, whatever the Request-URI says.
	res := runRaw(t, s, testpeer.NewDialog("100", "6511111111").Invite(nil, "application/sdp", testpeer.G711SDP(1)).Expect(200).Ack("").AwaitBye())
	ok := final(res, "INVITE")[0]
	if c, _ := ok.Header("Contact"); !strings.Contains(c, "@127.0.0.2:") {
		t.Errorf("200's Contact %q", c)
	}
	if !strings.Contains(ok.Body(), "c=IN IP4 127.0.0.2") {
		t.Errorf("200's SDP:\n%s", ok.Body())
	}
	for _, m := range testpeer.Messages(res.Trace) {
		if m.Received && m.Method == "BYE" && m.Status == 0 {
			if v, _ := m.Header("Via"); !strings.Contains(v, "127.0.0.2:") {
				t.Errorf("BYE's Via %q", v)
			}
			if c, _ := m.Header("Contact"); !strings.Contains(c, "@127.0.0.2:") {
				t.Errorf("BYE's Contact %q", c)
			}
			return
		}
	}
	t.Fatalf("no BYE\n%s", res.Trace)
}

// diago stops its RTCP writer by setting the RTCP socket's deadline to the present: a report
// that meets it ends the writer as a closed socket would (logged at debug), not as an error.
func TestRTCPWriteStoppedByDeadline(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := &rtcpSocket{UDPConn: conn, rtp: &rtpSocket{}}
	to := conn.LocalAddr()
	if _, err := s.WriteTo([]byte{0x80, 200, 0, 1}, to); err != nil {
		t.Fatalf("write before the deadline: %v", err)
	}
	if err := s.SetDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = s.WriteTo([]byte{0x80, 200, 0, 1}, to)
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after the deadline: %v, want net.ErrClosed", err)
	}
	if err := s.SetDeadline(time.Time{}); err != nil { // a fork's new writer clears it
		t.Fatal(err)
	}
	if _, err := s.WriteTo([]byte{0x80, 200, 0, 1}, to); err != nil {
		t.Fatalf("write after the deadline was cleared: %v", err)
	}
}
