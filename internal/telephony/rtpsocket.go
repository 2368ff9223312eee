package telephony

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"
)

// rtpSocket is an incoming call's RTP socket as diago's media session sees it (a
// net.PacketConn): reads return only the packets the call's latch accepts, and writes go
// to where the caller's RTP comes from once the caller is found to be behind NAT, else to
// the address its SDP names.
//
// Nothing blocks on it (rawUDP): the call's pacer takes the waiting packets with receive
// every 20 ms and hands them to diago's reader through ReadFrom, which answers errNoPacket
// once they are read. Deadlines, which diago sets to interrupt a blocked read, mean nothing
// to it. ReadFrom runs only in the pacer, which alone touches the latch; the SIP side asks
// it to start over with expect, writers read dest.
type rtpSocket struct {
	conn    *rawUDP
	staged  *rxBatch                    // the batch being read while the pacer polls, else nil
	at      time.Time                   // when the packet ReadFrom returned last arrived
	pending atomic.Pointer[expectation] // set by expect, taken by ReadFrom
	dest    atomic.Pointer[netip.AddrPort]
	latched atomic.Pointer[netip.AddrPort] // the latched source, for the RTCP socket and tests
	dropped atomic.Uint64                  // packets refused

	// Reader (pacer) only.
	l      latch
	want   expectation
	from   *net.UDPAddr // the latched address as the net.Addr ReadFrom returns
	logged bool         // a dropped packet has been logged since the last latch

	onLatch func(from netip.AddrPort, nat bool) // called by the reader when it latches
	onDrop  func(from netip.AddrPort)           // called for the first packet from another address after a latch
}

// expectation is where a call's media is expected from after an offer/answer.
type expectation struct {
	sdp   netip.AddrPort // the address in the remote SDP
	sigIP netip.Addr     // where the caller's SIP requests come from
	nat   bool           // the caller's SIP showed it is behind NAT: answer its media where it comes from
}

var _ net.PacketConn = (*rtpSocket)(nil)

// expect makes the socket latch afresh on media described by e. Until it has, RTP goes to
// e.sdp, unless the call is behind NAT and a source is latched already: that one keeps
// getting it (an SDP behind NAT names an address that cannot be reached).
func (s *rtpSocket) expect(e expectation) {
	s.pending.Store(&e)
	if e.nat && s.latched.Load() != nil {
		return
	}
	s.dest.Store(&e.sdp)
}

// receive takes the packets waiting on the socket into b and stages them for ReadFrom.
func (s *rtpSocket) receive(b *rxBatch) error {
	s.staged = b
	return s.conn.recv(b)
}

// read returns the next staged packet.
func (s *rtpSocket) read(b []byte) (int, netip.AddrPort, error) {
	p := s.staged.take()
	if p == nil {
		return 0, netip.AddrPort{}, errNoPacket
	}
	s.at = p.at
	return copy(b, p.data), p.from, nil
}

func (s *rtpSocket) LocalAddr() net.Addr                { return s.conn.LocalAddr() }
func (s *rtpSocket) Close() error                       { return s.conn.Close() }
func (s *rtpSocket) SetDeadline(t time.Time) error      { return nil }
func (s *rtpSocket) SetReadDeadline(t time.Time) error  { return nil }
func (s *rtpSocket) SetWriteDeadline(t time.Time) error { return nil }

// ReadFrom returns the next packet the latch accepts.
func (s *rtpSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := s.read(b)
		if err != nil {
			return n, nil, err
		}
		if e := s.pending.Swap(nil); e != nil {
			s.want = *e
			s.l.reset(e.sdp, e.sigIP)
			s.latched.Store(nil)
			s.logged = false
		}
		ssrc, seq, ok := rtpHeader(b[:n])
		var accepted, now bool
		if ok {
			accepted, now = s.l.accept(from, ssrc, seq)
		}
		if !accepted {
			s.dropped.Add(1)
			if l := s.l.latched(); !s.logged && s.onDrop != nil && l.IsValid() && from != l {
				s.logged = true
				s.onDrop(from)
			}
			continue
		}
		if now {
			addr := s.l.latched()
			s.from = net.UDPAddrFromAddrPort(addr)
			s.latched.Store(&addr)
			nat := s.want.nat || addr.Addr() != s.want.sdp.Addr()
			if nat {
				s.dest.Store(&addr)
			}
			if s.onLatch != nil {
				s.onLatch(addr, nat)
			}
		}
		return n, s.from, nil
	}
}

// WriteTo sends b to the call's RTP destination; addr (diago's idea of it) is used only
// before the first offer/answer.
func (s *rtpSocket) WriteTo(b []byte, addr net.Addr) (int, error) {
	if d := s.dest.Load(); d != nil {
		return s.conn.sendTo(b, *d)
	}
	a, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: net.InvalidAddrError("not a UDP address")}
	}
	return s.conn.sendTo(b, a.AddrPort())
}

// rtcpSocket is the RTCP socket beside an rtpSocket: it takes RTCP only from the latched
// RTP source's IP address, and once the call is answered where its media comes from (NAT)
// it sends RTCP back to where the caller's RTCP comes from.
type rtcpSocket struct {
	*net.UDPConn
	rtp  *rtpSocket
	dest atomic.Pointer[netip.AddrPort]
}

var _ net.PacketConn = (*rtcpSocket)(nil)

func (s *rtcpSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := s.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, nil, err
		}
		l := s.rtp.latched.Load()
		if l == nil || from.Addr().Unmap() != l.Addr() {
			continue
		}
		if d := s.rtp.dest.Load(); d != nil && *d == *l && s.dest.Load() == nil {
			s.dest.Store(&from)
		}
		return n, net.UDPAddrFromAddrPort(from), nil
	}
}

// WriteTo sends an RTCP packet. Its deadline is only ever set by diago, to the present, to
// stop its RTCP writer (at hang-up and when the media is renegotiated): a report cut off by
// it is answered net.ErrClosed, which the writer takes as its end, instead of the timeout it
// would log as an error.
func (s *rtcpSocket) WriteTo(b []byte, addr net.Addr) (n int, err error) {
	if d := s.dest.Load(); d != nil {
		n, err = s.UDPConn.WriteToUDPAddrPort(b, *d)
	} else {
		n, err = s.UDPConn.WriteTo(b, addr)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("telephony: rtcp writer stopped: %w", net.ErrClosed)
	}
	return n, err
}

// portRange hands out RTP/RTCP port pairs (an even port and the one above it) from
// [low, high], round robin, skipping ports in use. The zero portRange takes any free pair.
type portRange struct {
	low, high int
	next      atomic.Uint32 // offset of the next pair to try
}

var errNoPorts = errors.New("telephony: no free RTP port")

// listen binds an RTP socket and its RTCP socket (the port above) on ip.
func (r *portRange) listen(ip netip.Addr) (rtp *rawUDP, rtcp *net.UDPConn, err error) {
	if r.low == 0 {
		for range 20 {
			rtp, err = listenRawUDP(netip.AddrPortFrom(ip, 0))
			if err != nil {
				return nil, nil, fmt.Errorf("telephony: rtp socket: %w", err)
			}
			p := rtp.local.Port
			if p%2 == 0 && p < 65535 {
				if rtcp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p+1)))); err == nil {
					return rtp, rtcp, nil
				}
			}
			rtp.Close()
		}
		return nil, nil, errNoPorts
	}
	first := r.low + r.low%2
	pairs := (r.high - first + 1) / 2
	if pairs <= 0 {
		return nil, nil, errNoPorts
	}
	start := int(r.next.Add(1)-1) % pairs
	for k := range pairs {
		p := first + 2*((start+k)%pairs)
		rtp, err = listenRawUDP(netip.AddrPortFrom(ip, uint16(p)))
		if err != nil {
			continue
		}
		rtcp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p+1))))
		if err != nil {
			rtp.Close()
			continue
		}
		r.next.Store(uint32(start + k + 1))
		return rtp, rtcp, nil
	}
	return nil, nil, fmt.Errorf("%w in %d-%d", errNoPorts, r.low, r.high)
}
