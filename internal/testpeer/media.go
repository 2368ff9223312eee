package testpeer

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pion/rtp"

	"github.com/ivrd/ivrd/internal/audio"
)

// maxHeard caps the audio a receiver keeps (10 minutes).
const maxHeard = 10 * 60 * audio.Rate

// receiver is the caller's RTP endpoint: the SDP we offer points at it (sipp itself only
// sends). It decodes G.711 and lays the samples out by RTP timestamp, so silences between
// talkspurts (which the sender marks with timestamp jumps) stay in place.
type receiver struct {
	conn *net.UDPConn
	done chan struct{}

	onMedia func(netip.AddrPort) // called with the source of the first packet

	mu       sync.Mutex
	arrivals []time.Time
	pcm      []int16
	first    time.Time
	has      bool
	ssrc     uint32
	base     uint32 // RTP timestamp of sample 0
	packets  int
	events   int // telephone-event packets received
}

func newReceiver(onMedia func(netip.AddrPort)) (*receiver, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	// Arrival times are the kernel's: on a busy machine this process may read late.
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
		})
	}
	r := &receiver{conn: conn, done: make(chan struct{}), onMedia: onMedia}
	go r.run()
	return r, nil
}

func (r *receiver) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

// stop closes the socket and waits for the reader.
func (r *receiver) stop() {
	r.conn.Close()
	<-r.done
}

func (r *receiver) run() {
	defer close(r.done)
	buf := make([]byte, 1600)
	var pkt rtp.Packet
	var pcm []int16
	oob := make([]byte, 128)
	first := true
	for {
		n, oobn, _, from, err := r.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			return
		}
		at := kernelTime(oob[:oobn])
		if first && r.onMedia != nil {
			go r.onMedia(from)
		}
		first = false
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		switch pkt.PayloadType {
		case 0:
			pcm = audio.DecodeUlaw(pcm[:0], pkt.Payload)
		case 8:
			pcm = audio.DecodeAlaw(pcm[:0], pkt.Payload)
		default:
			r.mu.Lock()
			r.events++
			r.mu.Unlock()
			continue
		}
		r.place(pkt.SSRC, pkt.Timestamp, pcm, at)
	}
}

func (r *receiver) place(ssrc, ts uint32, pcm []int16, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.packets++
	r.arrivals = append(r.arrivals, now)
	if !r.has {
		r.has, r.ssrc, r.base, r.first = true, ssrc, ts, now
	}
	pos := int(int32(ts - r.base))
	if ssrc != r.ssrc || pos < 0 || pos > maxHeard {
		// A new stream or a wild jump: continue where the audio ends.
		r.ssrc = ssrc
		pos = len(r.pcm)
		r.base = ts - uint32(pos)
	}
	end := pos + len(pcm)
	if end > maxHeard {
		return
	}
	if end > len(r.pcm) {
		r.pcm = append(r.pcm, make([]int16, end-len(r.pcm))...)
	}
	copy(r.pcm[pos:], pcm)
}

// heard returns the audio received, when its first packet arrived, the packet counts and the
// audio packets' arrival times.
func (r *receiver) heard() ([]int16, time.Time, int, int, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pcm, r.first, r.packets, r.events, r.arrivals
}

// kernelTime is the receive time in a packet's SCM_TIMESTAMPNS control message, or now.
func kernelTime(oob []byte) time.Time {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
				return time.Unix(sec, nsec)
			}
		}
	}
	return time.Now()
}
