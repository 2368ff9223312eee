package telephony

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP is an incoming call's RTP socket, kept outside Go's network poller: nothing blocks on
// it. Its pacer takes what waits on it every 20 ms (recv), and frames are sent on it with one
// system call each (sendTo). A socket in Go's poller costs the runtime an epoll event for
// every packet that arrives, even when no goroutine waits for it; at 50 packets a second per
// call those events, and the thread wake-ups they bring, are a real share of the CPU.
//
// The kernel stamps each packet's arrival (SO_TIMESTAMPNS), so packets keep their true
// arrival times however late they are taken.
type rawUDP struct {
	mu     sync.RWMutex // read-held around every system call on fd; Close takes it to close fd
	fd     int
	closed bool
	v6     bool // an AF_INET6 socket: destinations are written as IPv6 (IPv4 mapped)
	local  *net.UDPAddr
}

// listenRawUDP binds a UDP socket to addr (port 0: any free port).
func listenRawUDP(addr netip.AddrPort) (*rawUDP, error) {
	ip := addr.Addr().Unmap() // an IPv4 address in IPv6 form binds an IPv4 socket, as with net.ListenUDP
	family := unix.AF_INET
	if !ip.Is4() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	u := &rawUDP{fd: fd, v6: family == unix.AF_INET6}
	fail := func(op string, err error) (*rawUDP, error) {
		unix.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: os.NewSyscallError(op, err)}
	}
	if u.v6 && ip.IsUnspecified() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return fail("setsockopt", err) // dual stack, as Go's own listeners on [::]
		}
	}
	var sa unix.Sockaddr
	if u.v6 {
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	// Without the stamps a packet counts as arriving when it is taken, at most 20 ms late.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	got, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	switch got := got.(type) {
	case *unix.SockaddrInet4:
		u.local = &net.UDPAddr{IP: net.IP(got.Addr[:]).To16(), Port: got.Port}
	case *unix.SockaddrInet6:
		u.local = &net.UDPAddr{IP: net.IP(got.Addr[:]), Port: got.Port}
	}
	return u, nil
}

// LocalAddr is the address the socket is bound to.
func (u *rawUDP) LocalAddr() net.Addr { return u.local }

// Close closes the socket once a system call under way has returned. Idempotent.
func (u *rawUDP) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	u.closed = true
	return unix.Close(u.fd)
}

// recv takes the packets waiting on the socket into b (none is not an error).
func (u *rawUDP) recv(b *rxBatch) error {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed {
		b.reset()
		return net.ErrClosed
	}
	return b.receive(u.fd)
}

// sendTo sends p to to, never waiting: a full socket buffer loses the packet, as a full
// network would (EAGAIN and ENOBUFS are not errors to the sender).
func (u *rawUDP) sendTo(p []byte, to netip.AddrPort) (int, error) {
	var sa unix.RawSockaddrInet6
	n := putSockaddr(&sa, to, u.v6)
	if n == 0 {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: unix.EAFNOSUPPORT}
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed {
		return 0, net.ErrClosed
	}
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(ptr), uintptr(len(p)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), n)
	switch e {
	case 0, unix.EAGAIN, unix.ENOBUFS:
		return len(p), nil
	}
	return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: fmt.Errorf("sendto: %w", e)}
}

// putSockaddr writes to into sa as the kernel takes it, and returns its length: IPv6 (IPv4
// mapped) for an IPv6 socket, else IPv4; 0 when an IPv4 socket is asked for an IPv6 address.
// sockaddrPort reads it back.
func putSockaddr(sa *unix.RawSockaddrInet6, to netip.AddrPort, v6 bool) uintptr {
	*sa = unix.RawSockaddrInet6{}
	switch {
	case v6:
		sa.Family, sa.Addr = unix.AF_INET6, to.Addr().As16()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], to.Port())
		return unix.SizeofSockaddrInet6
	case to.Addr().Unmap().Is4():
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family, sa4.Addr = unix.AF_INET, to.Addr().Unmap().As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], to.Port())
		return unix.SizeofSockaddrInet4
	}
	return 0
}
