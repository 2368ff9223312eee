package telephony

import (
	"encoding/binary"
	"errors"
	"golang.org/x/sys/unix"
	"net/netip"
	"os"
	"time"
	"unsafe"
)

// rxBatchLen is how many packets one system call takes from a socket at most: a call sends
// one every 20 ms and a socket is emptied every 20 ms, so more than two wait only after a
// stall (then the batch is taken again until the socket is empty).
const rxBatchLen = 8

// rxPacketMax is the largest packet a batch takes whole (an Ethernet MTU, as diago reads);
// longer ones are dropped.
const rxPacketMax = 1500

// rxOOBLen holds one SCM_TIMESTAMPNS control message (a header and a timespec) with room.
const rxOOBLen = 64

// maxRxAge bounds the age a kernel arrival time may give a packet; older stamps (a clock
// step) are taken as the present.
const maxRxAge = time.Second

// errNoPacket is what an RTP socket's ReadFrom answers when the packets its pacer took from
// it have all been read.
var errNoPacket = errors.New("telephony: no rtp packet waiting")

// rxPacket is one packet of a batch.
type rxPacket struct {
	data []byte
	from netip.AddrPort
	at   time.Time // when the kernel received it
}

// rxBatch takes the RTP waiting on one socket after another from a single goroutine (a
// pacer): one recvmmsg per socket takes every packet queued there (at most rxBatchLen), each
// with the time the kernel received it (SO_TIMESTAMPNS), so the packets keep their true
// arrival times however late they are read. It replaces a reader goroutine per call, which
// woke once per packet.
type rxBatch struct {
	hdrs  [rxBatchLen]unix.Mmsghdr
	iov   [rxBatchLen]unix.Iovec
	names [rxBatchLen]unix.RawSockaddrInet6 // room for either family
	oob   [rxBatchLen][rxOOBLen]byte
	bufs  [rxBatchLen][rxPacketMax]byte

	pkts []rxPacket // taken by the last receive; next is the first one not yet read
	next int
	got  int // messages the last system call returned: the headers it wrote
}

func newRxBatch() *rxBatch {
	b := &rxBatch{pkts: make([]rxPacket, 0, rxBatchLen)}
	for i := range b.hdrs {
		b.iov[i].Base = &b.bufs[i][0]
		b.iov[i].SetLen(len(b.bufs[i]))
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iov[i]
		h.SetIovlen(1)
		h.Control = &b.oob[i][0]
	}
	b.got = rxBatchLen // every header is to be made ready
	b.reset()
	return b
}

// reset forgets the last receive's packets and makes ready the headers it wrote (the kernel
// writes only those of the messages it returns).
func (b *rxBatch) reset() {
	b.pkts, b.next = b.pkts[:0], 0
	for i := range b.got {
		b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.hdrs[i].Hdr.SetControllen(rxOOBLen)
		b.hdrs[i].Hdr.Flags = 0
		b.hdrs[i].Len = 0
	}
	b.got = 0
}

// receive takes the packets waiting on the socket fd, at most rxBatchLen, without waiting;
// none is not an error. The packets are b's until the next receive.
func (b *rxBatch) receive(fd int) error {
	b.reset()
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])),
		rxBatchLen, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		b.got = int(r)
	case unix.EAGAIN, unix.EINTR:
		return nil
	default:
		return os.NewSyscallError("recvmmsg", e)
	}
	now := time.Now()
	wall := now.Round(0) // the kernel's stamps are wall-clock times
	for i := range b.got {
		h := &b.hdrs[i]
		from, ok := sockaddrPort(&b.names[i], h.Hdr.Namelen)
		if !ok || h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			continue
		}
		at := now
		if ts, ok := rxStamp(b.oob[i][:min(int(h.Hdr.Controllen), rxOOBLen)]); ok {
			if age := wall.Sub(ts); age > 0 && age < maxRxAge {
				at = now.Add(-age) // keeps now's monotonic reading
			}
		}
		b.pkts = append(b.pkts, rxPacket{data: b.bufs[i][:h.Len], from: from, at: at})
	}
	return nil
}

// full reports whether the last receive filled the batch: more may be waiting.
func (b *rxBatch) full() bool { return b.got == rxBatchLen }

// take returns the next packet of the batch not yet read, or nil.
func (b *rxBatch) take() *rxPacket {
	if b == nil || b.next >= len(b.pkts) {
		return nil
	}
	p := &b.pkts[b.next]
	b.next++
	return p
}

// sockaddrPort reads the source address the kernel wrote.
func sockaddrPort(sa *unix.RawSockaddrInet6, n uint32) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		if n < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		if n < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port), true
	}
	return netip.AddrPort{}, false
}

// rxStamp finds the SCM_TIMESTAMPNS arrival time in a packet's control messages.
func rxStamp(oob []byte) (time.Time, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return time.Time{}, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS &&
			l >= unix.SizeofCmsghdr+int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.SizeofCmsghdr]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec)), true
		}
		l = (l + int(unsafe.Sizeof(uintptr(0))) - 1) &^ (int(unsafe.Sizeof(uintptr(0))) - 1) // CMSG_ALIGN
		if l >= len(oob) {
			break
		}
		oob = oob[l:]
	}
	return time.Time{}, false
}
