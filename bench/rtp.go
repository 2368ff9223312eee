package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// The caller side's RTP endpoint. Every call's SDP names the same UDP port, so everything ivrd
// sends arrives on one socket; a call's stream is recognised by its source port, which is the
// port ivrd put in its 200 OK (read back from sipp's message trace). Arrival times are the
// kernel's receive timestamps (SO_TIMESTAMPNS), so the harness's own scheduling on a busy
// machine does not count against ivrd; the receive buffer is forced large and the kernel's
// drop counter for the socket is reported, so no loss can hide on our side.
//
// Definitions (per call):
//   - talkspurt: packets with consecutive sequence numbers and timestamps 160 apart (20 ms of
//     G.711); a marker bit or a timestamp jump starts a new one. ivrd's RTP clock follows the
//     wall clock across pauses, so a jump is exactly the silence it left.
//   - lateness of a packet: its arrival minus its schedule, where the schedule is the RTP
//     timestamp laid on the arrival clock through the talkspurt's earliest packet (as a
//     receiver's jitter buffer anchors playout; a long talkspurt is anchored in 10 s spans).
//     A frame is late when lateness > -late.
//   - lost: sequence numbers that never arrived, plus the frames of every pause that no block
//     boundary explains (ivrd restarts its schedule after a stall of over 200 ms; the
//     receiver then sees a pause in mid-prompt). A pause is explained when the app got a
//     block-done notification for that call while it lasted.
type rtpStream struct {
	has        bool
	lastSeq    uint16
	lastTS     uint32
	lastAt     int64 // ns
	ts         int64 // unwrapped timestamp of the last packet
	packets    int
	lostSeq    int
	reordered  int
	nonAudio   int
	talk       []int64 // offsets (arrival ns - ts*125000) of the current talkspurt
	talkAt     []int64 // arrival (unix ns) of the same packets
	lateness   []int32 // µs, every packet of finished talkspurts
	arrival    []int32 // the same packets' arrival, in seconds (unix)
	pauses     []pause
	talkspurts int
}

// pause is a silence between talkspurts as the receiver saw it.
type pause struct {
	from, to int64 // arrival (unix ns) of the packets on either side
	frames   int   // 20 ms frames of silence in the RTP timeline
}

type rtpSet struct {
	conn, rtcp *net.UDPConn
	port       int
	done       chan struct{}
	streams    map[uint16]*rtpStream // by ivrd's source port; owned by the reader until close
	noStamp    int                   // packets without a kernel timestamp (then time.Now)
	drops      int64                 // kernel drops on our socket (receive buffer full)
}

// newRTPSet binds an even/odd port pair on 127.0.0.1 and starts the reader.
func newRTPSet() (*rtpSet, error) {
	for port := 30000; port < 65000; port += 2 {
		c1, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			continue
		}
		c2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err != nil {
			c1.Close()
			continue
		}
		s := &rtpSet{conn: c1, rtcp: c2, port: port, done: make(chan struct{}, 2), streams: map[uint16]*rtpStream{}}
		if err := s.setup(); err != nil {
			c1.Close()
			c2.Close()
			return nil, err
		}
		go s.run()
		go s.drainRTCP()
		return s, nil
	}
	return nil, fmt.Errorf("rtp: no free port pair")
}

func (s *rtpSet) setup() error {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
		// As root the buffer may exceed rmem_max; otherwise take what SO_RCVBUF gives.
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 64<<20) != nil {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<20)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// close stops the reader and reads the kernel's drop count; the streams are then final.
func (s *rtpSet) close() {
	s.drops = udpDrops(s.port)
	s.conn.Close()
	s.rtcp.Close()
	<-s.done
	<-s.done
	for _, st := range s.streams {
		st.endTalkspurt()
	}
}

func (s *rtpSet) drainRTCP() {
	defer func() { s.done <- struct{}{} }()
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.rtcp.ReadFromUDPAddrPort(buf); err != nil {
			return
		}
	}
}

// Batched receive: recvmmsg without waiting until the socket is empty, then a 10 ms nap. The
// kernel timestamps keep arrival times exact however late we read, and the forced receive
// buffer holds seconds of packets. The harness shares the machine with ivrd, so its cost
// matters: a wake-up per packet (netpoll) or per millisecond cost it several times more CPU
// than this, mostly in the kernel.
const (
	rtpBatch   = 64
	rtpBufSize = 512 // a 20 ms G.711 packet is 172 bytes
	rtpOOBSize = 128 // room for SCM_TIMESTAMPNS
	rtpNap     = 10 * time.Millisecond
)

// mmsghdr is struct mmsghdr (64-bit Linux).
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

func (s *rtpSet) run() {
	defer func() { s.done <- struct{}{} }()
	niceThisThread(loadNice) // the goroutine ends with the capture, and its thread with it
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	bufs := make([][rtpBufSize]byte, rtpBatch)
	oobs := make([][rtpOOBSize]byte, rtpBatch)
	names := make([]syscall.RawSockaddrInet4, rtpBatch)
	iovs := make([]syscall.Iovec, rtpBatch)
	msgs := make([]mmsghdr, rtpBatch)
	for i := range msgs {
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(rtpBufSize)
		msgs[i].hdr.Iov = &iovs[i]
		msgs[i].hdr.Iovlen = 1
		msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		msgs[i].hdr.Control = &oobs[i][0]
	}
	for {
		for i := range msgs {
			msgs[i].hdr.Namelen = syscall.SizeofSockaddrInet4
			msgs[i].hdr.SetControllen(rtpOOBSize)
			msgs[i].hdr.Flags = 0
		}
		var n int
		var errno syscall.Errno
		err := rc.Read(func(fd uintptr) bool {
			r, _, e := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&msgs[0])), rtpBatch, syscall.MSG_DONTWAIT, 0, 0)
			n, errno = int(r), e
			return true
		})
		if err != nil {
			return // closed
		}
		if errno != 0 || n <= 0 {
			if errno != 0 && errno != syscall.EAGAIN && errno != syscall.EINTR {
				return
			}
			time.Sleep(rtpNap)
			continue
		}
		for i := range n {
			m := &msgs[i]
			at, ok := kernelStamp(oobs[i][:min(int(m.hdr.Controllen), rtpOOBSize)])
			if !ok {
				at = time.Now().UnixNano()
				s.noStamp++
			}
			pb := (*[2]byte)(unsafe.Pointer(&names[i].Port))
			s.packet(bufs[i][:min(int(m.n), rtpBufSize)], uint16(pb[0])<<8|uint16(pb[1]), at)
		}
	}
}

// kernelStamp finds the SCM_TIMESTAMPNS control message (struct timespec) in oob.
func kernelStamp(oob []byte) (int64, bool) {
	const hdr = int(unsafe.Sizeof(syscall.Cmsghdr{}))
	for len(oob) >= hdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return 0, false
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && l >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			return sec*1e9 + nsec, true
		}
		oob = oob[(l+7)&^7:]
	}
	return 0, false
}

// packet accounts one packet from ivrd's port from, which arrived at at (unix ns).
func (s *rtpSet) packet(b []byte, from uint16, at int64) {
	if len(b) < 12 || b[0]>>6 != 2 || len(b) < 12+4*int(b[0]&0x0f) {
		return
	}
	st := s.streams[from]
	if st == nil {
		st = &rtpStream{}
		s.streams[from] = st
	}
	marker := b[1]&0x80 != 0
	pt := b[1] & 0x7f
	seq := binary.BigEndian.Uint16(b[2:])
	ts := binary.BigEndian.Uint32(b[4:])
	if pt != 0 && pt != 8 {
		st.nonAudio++
		return
	}
	if !st.has {
		st.has = true
		st.lastSeq, st.lastTS, st.lastAt = seq, ts, at
		st.packets++
		st.talkspurts++
		st.talk = append(st.talk[:0], at)
		st.talkAt = append(st.talkAt[:0], at)
		return
	}
	dseq := int(int16(seq - st.lastSeq))
	if dseq <= 0 {
		st.reordered++
		return
	}
	st.packets++
	if dseq > 1 {
		st.lostSeq += dseq - 1
	}
	dts := int64(int32(ts - st.lastTS))
	st.ts += dts
	if marker || dts > int64(160*dseq) {
		st.endTalkspurt()
		st.talkspurts++
		st.pauses = append(st.pauses, pause{from: st.lastAt, to: at, frames: int(max(dts/160-int64(dseq), 0))})
	}
	if len(st.talk) >= anchorSpan {
		st.endTalkspurt()
	}
	st.talk = append(st.talk, at-st.ts*125000)
	st.talkAt = append(st.talkAt, at)
	st.lastSeq, st.lastTS, st.lastAt = seq, ts, at
}

// anchorSpan bounds how many packets share one schedule anchor (10 s): over a talkspurt of
// minutes, a slewing wall clock (kernel timestamps are CLOCK_REALTIME, ivrd paces on the
// monotonic clock) must not pass for lateness. A stall shorter than that still shows.
const anchorSpan = 500

// endTalkspurt turns the current talkspurt's offsets into latenesses.
func (st *rtpStream) endTalkspurt() {
	if len(st.talk) == 0 {
		return
	}
	base := slices.Min(st.talk)
	for i, o := range st.talk {
		st.lateness = append(st.lateness, int32(min((o-base)/1000, 1<<31-1)))
		st.arrival = append(st.arrival, int32(st.talkAt[i]/1e9))
	}
	st.talk, st.talkAt = st.talk[:0], st.talkAt[:0]
}

// udpDrops reads the kernel's drop counter of our UDP socket on 127.0.0.1:port.
func udpDrops(port int) int64 {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return -1
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 13 && f[1] == want {
			n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			return n
		}
	}
	return -1
}

// rtpStats sums the streams.
type rtpStats struct {
	Calls          int     `json:"calls_with_rtp"`
	Unmatched      int     `json:"streams_not_matched_to_a_call"`
	Packets        int     `json:"packets"`
	LostSeq        int     `json:"lost_seq"`
	StallFrames    int     `json:"stall_frames"`
	Stalls         int     `json:"stalls"`
	Late           int     `json:"late"`
	Late20         int     `json:"late_over_20ms"`
	Reordered      int     `json:"reordered"`
	ReceiverDrops  int64   `json:"receiver_kernel_drops"`
	NoKernelStamp  int     `json:"packets_without_kernel_timestamp"`
	LatenessP50us  float64 `json:"lateness_p50_us"`
	LatenessP99us  float64 `json:"lateness_p99_us"`
	LatenessP999us float64 `json:"lateness_p999_us"`
	LatenessMaxus  float64 `json:"lateness_max_us"`
	LateOrLostPct  float64 `json:"late_or_lost_pct"`
	Talkspurts     int     `json:"talkspurts"`
	// Seconds (since sipp started placing calls) that had late or stalled frames, and how
	// many: [second, late, stall frames], at most 300 entries.
	Timeline [][3]int `json:"bad_seconds,omitempty"`
}

// stats sums the streams. late is the lateness threshold; call maps a source port to its
// call's From user ("" if unknown); explained tells whether that call had a block boundary
// between two arrival times (unix ns).
func (s *rtpSet) stats(late time.Duration, origin time.Time, call func(port uint16) string, explained func(from string, a, b int64) bool) rtpStats {
	r := rtpStats{ReceiverDrops: s.drops, NoKernelStamp: s.noStamp}
	var all []int32
	t0 := int32(origin.Unix())
	bad := map[int32]*[3]int{}
	mark := func(sec int32, late, stall int) {
		b := bad[sec-t0]
		if b == nil {
			b = &[3]int{int(sec - t0)}
			bad[sec-t0] = b
		}
		b[1] += late
		b[2] += stall
	}
	thr := int32(late / time.Microsecond)
	for port, st := range s.streams {
		if !st.has {
			continue
		}
		from := call(port)
		if from == "" {
			r.Unmatched++
		}
		r.Calls++
		r.Packets += st.packets
		r.LostSeq += st.lostSeq
		r.Reordered += st.reordered
		r.Talkspurts += st.talkspurts
		for i, l := range st.lateness {
			if l > thr {
				r.Late++
				mark(st.arrival[i], 1, 0)
			}
			if l > 20000 {
				r.Late20++
			}
		}
		all = append(all, st.lateness...)
		for _, p := range st.pauses {
			if from == "" || !explained(from, p.from, p.to) {
				r.Stalls++
				r.StallFrames += p.frames
				mark(int32(p.to/1e9), 0, p.frames)
			}
		}
	}
	if len(all) > 0 {
		slices.Sort(all)
		q := func(p float64) float64 { return float64(all[min(int(p*float64(len(all))), len(all)-1)]) }
		r.LatenessP50us, r.LatenessP99us, r.LatenessP999us, r.LatenessMaxus = q(0.5), q(0.99), q(0.999), float64(all[len(all)-1])
	}
	for _, b := range bad {
		r.Timeline = append(r.Timeline, *b)
	}
	slices.SortFunc(r.Timeline, func(a, b [3]int) int { return a[0] - b[0] })
	if len(r.Timeline) > 300 {
		r.Timeline = r.Timeline[:300]
	}
	if expected := r.Packets + r.LostSeq + r.StallFrames; expected > 0 {
		r.LateOrLostPct = 100 * float64(r.Late+r.LostSeq+r.StallFrames) / float64(expected)
	}
	return r
}
