package telephony

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// polledSocket is a polled RTP socket on ip and a peer socket that sends to it.
func polledSocket(t *testing.T, ip string) (*rtpSocket, *net.UDPConn) {
	t.Helper()
	addr := &net.UDPAddr{IP: net.ParseIP(ip)}
	c, err := listenRawUDP(addr.AddrPort())
	if err != nil {
		t.Skipf("no %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	s := &rtpSocket{conn: c}
	peer, err := net.DialUDP("udp", addr, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	return s, peer
}

// rtpPacket is a PCMU packet with sequence number seq and a payload of 160 bytes of seq.
func rtpPacket(seq uint16) []byte {
	p := make([]byte, 12+160)
	p[0], p[1] = 0x80, ptPCMU
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], uint32(seq)*160)
	binary.BigEndian.PutUint32(p[8:], 0x1234)
	for i := 12; i < len(p); i++ {
		p[i] = byte(seq)
	}
	return p
}

// A batch takes every packet waiting on the socket, in order, each with its source and the
// time the kernel received it, not the time it was taken; an empty socket gives none and no
// error, a backlog comes in full batches until the socket is empty.
func TestRxBatchTakesWaitingPackets(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "::1"} {
		t.Run(ip, func(t *testing.T) {
			s, peer := polledSocket(t, ip)
			b := newRxBatch()
			if err := s.receive(b); err != nil || len(b.pkts) != 0 {
				t.Fatalf("empty socket: %d packets, %v", len(b.pkts), err)
			}

			var sent, wrote []time.Time
			for seq := range uint16(3) {
				sent = append(sent, time.Now())
				if _, err := peer.Write(rtpPacket(seq)); err != nil {
					t.Fatal(err)
				}
				wrote = append(wrote, time.Now())
				time.Sleep(30 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			taken := time.Now()
			if err := s.receive(b); err != nil {
				t.Fatal(err)
			}
			if len(b.pkts) != 3 {
				t.Fatalf("took %d packets, want 3", len(b.pkts))
			}
			want := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			for i, p := range b.pkts {
				if !bytes.Equal(p.data, rtpPacket(uint16(i))) {
					t.Errorf("packet %d: wrong bytes (seq %d)", i, binary.BigEndian.Uint16(p.data[2:]))
				}
				if p.from != want {
					t.Errorf("packet %d from %v, want %v", i, p.from, want)
				}
				// Stamped on arrival, which on loopback is inside the sender's write: not when
				// it was taken, 50 ms or more later (1 ms allowed for the clocks' rounding).
				if p.at.Before(sent[i].Add(-time.Millisecond)) || p.at.After(wrote[i].Add(time.Millisecond)) {
					t.Errorf("packet %d stamped %v after it was sent (written in %v, taken %v after)", i,
						p.at.Sub(sent[i]), wrote[i].Sub(sent[i]), taken.Sub(sent[i]))
				}
			}
			if b.full() {
				t.Error("a batch of 3 says it is full")
			}
			if err := s.receive(b); err != nil || len(b.pkts) != 0 {
				t.Fatalf("drained socket: %d packets, %v", len(b.pkts), err)
			}

			for seq := range uint16(rxBatchLen*2 + 3) {
				if _, err := peer.Write(rtpPacket(100 + seq)); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(20 * time.Millisecond)
			var got []int
			next := uint16(100)
			for range 4 {
				if err := s.receive(b); err != nil {
					t.Fatal(err)
				}
				got = append(got, len(b.pkts))
				for _, p := range b.pkts {
					if seq := binary.BigEndian.Uint16(p.data[2:]); seq != next {
						t.Fatalf("seq %d, want %d", seq, next)
					}
					next++
				}
			}
			if got[0] != rxBatchLen || got[1] != rxBatchLen || got[2] != 3 || got[3] != 0 {
				t.Errorf("a backlog of %d came in batches of %v, want [%d %d 3 0]", rxBatchLen*2+3, got, rxBatchLen, rxBatchLen)
			}
		})
	}
}

// A polled socket's ReadFrom never blocks: it hands out the staged packets through the latch,
// then errNoPacket. diago's deadlines, which interrupt a blocked reader, do not stop it.
func TestPolledSocketReadFrom(t *testing.T) {
	s, peer := polledSocket(t, "127.0.0.1")
	from := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	s.expect(expectation{sdp: from, sigIP: from.Addr()})
	buf := make([]byte, 1500)
	if _, _, err := s.ReadFrom(buf); !errors.Is(err, errNoPacket) {
		t.Fatalf("nothing staged: %v, want errNoPacket", err)
	}
	if err := s.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	for seq := range uint16(2) {
		if _, err := peer.Write(rtpPacket(seq)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	b := newRxBatch()
	if err := s.receive(b); err != nil {
		t.Fatalf("receive after diago's deadlines: %v", err)
	}
	for seq := range uint16(2) {
		n, addr, err := s.ReadFrom(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", seq, err)
		}
		if got := binary.BigEndian.Uint16(buf[2:n]); got != seq || addr.(*net.UDPAddr).AddrPort() != from {
			t.Errorf("packet %d: seq %d from %v", seq, got, addr)
		}
		if s.at != b.pkts[seq].at {
			t.Errorf("packet %d: arrival %v, want the batch's %v", seq, s.at, b.pkts[seq].at)
		}
	}
	if _, _, err := s.ReadFrom(buf); !errors.Is(err, errNoPacket) {
		t.Fatalf("after the batch: %v, want errNoPacket", err)
	}
	if got := s.latched.Load(); got == nil || *got != from {
		t.Errorf("latched %v, want %v", got, from)
	}
}

// rxStamp finds the arrival time among control messages, whatever else is there, and never
// reads past what it is given.
func TestRxStamp(t *testing.T) {
	msg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	ts := unix.NsecToTimespec(time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC).UnixNano())
	stamp := make([]byte, 16)
	binary.NativeEndian.PutUint64(stamp, uint64(ts.Sec))
	binary.NativeEndian.PutUint64(stamp[8:], uint64(ts.Nsec))
	other := msg(unix.SOL_IP, unix.IP_TTL, []byte{64, 0, 0, 0})
	want := time.Unix(ts.Sec, ts.Nsec)
	for _, tc := range []struct {
		name string
		oob  []byte
		ok   bool
	}{
		{"alone", msg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, stamp), true},
		{"after another", append(other, msg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, stamp)...), true},
		{"none", other, false},
		{"empty", nil, false},
		{"cut short", msg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, stamp)[:20], false},
		{"too short a stamp", msg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, stamp[:8]), false},
	} {
		got, ok := rxStamp(tc.oob)
		if ok != tc.ok || (ok && !got.Equal(want)) {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, ok, want, tc.ok)
		}
	}
}

func FuzzRxStamp(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, oob []byte) {
		rxStamp(oob)
	})
}

// sockaddrPort reads back what putSockaddr writes, in both families, and refuses anything else.
func TestSockaddrPort(t *testing.T) {
	for _, want := range []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.7:40000"),
		netip.MustParseAddrPort("[2001:db8::9]:5004"),
	} {
		var sa unix.RawSockaddrInet6
		n := uint32(putSockaddr(&sa, want, !want.Addr().Is4()))
		got, ok := sockaddrPort(&sa, n)
		if !ok || got != want {
			t.Errorf("%v read as %v %v", want, got, ok)
		}
		if _, ok := sockaddrPort(&sa, n-1); ok {
			t.Errorf("%v: a short address was read", want)
		}
	}
	sa := unix.RawSockaddrInet6{Family: unix.AF_UNIX}
	if _, ok := sockaddrPort(&sa, unix.SizeofSockaddrInet6); ok {
		t.Error("AF_UNIX read as an address")
	}
}

// The caller's RTP is taken by the leg's pacer, but each frame reaches the tap stamped with
// when it arrived: frames that arrived while the pacer was held up carry times inside the
// hold-up, not the time they were taken after it (a recording places them by those times).
func TestInboundArrivalTimesSurviveAStall(t *testing.T) {
	// Not parallel: holding the pacer up holds up every leg on it.
	rec := &recorder{}
	type stall struct {
		leg        *Leg
		from, till time.Time
	}
	got := make(chan stall, 1)
	s := startServer(t, func(l *Leg) {
		st := stall{leg: l}
		defer func() { got <- st }()
		l.SetTap(rec)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Answer(ctx); err != nil {
			return
		}
		// The caller's tone runs from about 0.5 s to 2.5 s after the answer.
		time.Sleep(1200 * time.Millisecond)
		l.snd.mu.Lock() // the pacer waits here for this leg
		st.from = time.Now()
		time.Sleep(300 * time.Millisecond)
		st.till = time.Now()
		l.snd.mu.Unlock()
		time.Sleep(1500 * time.Millisecond)
		_ = l.Hangup()
	})
	callSendingTone(t, s, 500*time.Millisecond, 2*time.Second)
	st := <-got
	if st.from.IsZero() {
		t.Fatal("the call was not answered")
	}
	waitDone(t, st.leg, 2*time.Second)
	in, _ := rec.frames()
	if _, _, n := toneSpan(in, 1000); n < 90 {
		t.Fatalf("only %d inbound frames carry 1 kHz (of %d)", n, len(in))
	}
	during := 0
	for _, f := range in {
		if f.at.After(st.from.Add(20*time.Millisecond)) && f.at.Before(st.till.Add(-20*time.Millisecond)) {
			during++
		}
	}
	// 300 ms of a 20 ms stream, less 40 ms at the edges: about 13 frames.
	if during < 9 {
		t.Errorf("%d frames stamped inside the %v hold-up, want about 13", during, st.till.Sub(st.from))
	}
}
