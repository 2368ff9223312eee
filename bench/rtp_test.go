package main

import (
	"encoding/binary"
	"testing"
	"time"
)

// rtpPacket builds a PCMU packet.
func rtpPacket(seq uint16, ts uint32, marker bool) []byte {
	b := make([]byte, 12+160)
	b[0] = 0x80
	if marker {
		b[1] = 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	return b
}

// feed sends frames of one stream: frame k is due at k*20 ms plus delay(k); skip(k) leaves
// a sequence number out.
func feed(s *rtpSet, src uint16, n int, delay func(k int) time.Duration, skip func(k int) bool) {
	base := time.Unix(1000, 0).UnixNano()
	for k := range n {
		if skip != nil && skip(k) {
			continue
		}
		at := base + int64(k)*int64(20*time.Millisecond) + int64(delay(k))
		s.packet(rtpPacket(uint16(65000+k), uint32(4000000000+160*k), k == 0), src, at)
	}
}

func TestRTPStatsOnTime(t *testing.T) {
	s := &rtpSet{streams: map[uint16]*rtpStream{}}
	src := uint16(4000)
	// Sequence and timestamp wrap; jitter below the threshold is not lateness.
	feed(s, src, 1000, func(k int) time.Duration { return time.Duration(k%7) * time.Millisecond }, nil)
	for _, st := range s.streams {
		st.endTalkspurt()
	}
	r := s.stats(40*time.Millisecond, time.Unix(1000, 0), func(uint16) string { return "1" }, func(string, int64, int64) bool { return false })
	if r.Packets != 1000 || r.Late != 0 || r.LostSeq != 0 || r.Stalls != 0 || r.LateOrLostPct != 0 {
		t.Fatalf("%+v", r)
	}
	if r.LatenessMaxus != 6000 {
		t.Fatalf("max lateness %v µs, want 6000", r.LatenessMaxus)
	}
}

func TestRTPStatsLateAndLost(t *testing.T) {
	s := &rtpSet{streams: map[uint16]*rtpStream{}}
	src := uint16(4000)
	// A 100 ms stall at frame 100 (frames 100-104 late by 100, 80, 60, 40, 20 ms as the
	// sender catches up) and two lost packets.
	delay := func(k int) time.Duration {
		if k >= 100 && k < 105 {
			return time.Duration(100-20*(k-100)) * time.Millisecond
		}
		return 0
	}
	feed(s, src, 400, delay, func(k int) bool { return k == 200 || k == 201 })
	for _, st := range s.streams {
		st.endTalkspurt()
	}
	r := s.stats(40*time.Millisecond, time.Unix(1000, 0), func(uint16) string { return "1" }, func(string, int64, int64) bool { return false })
	if r.Late != 3 || r.Late20 != 4 || r.LostSeq != 2 || r.Packets != 398 {
		t.Fatalf("%+v", r)
	}
	if want := 100 * 5.0 / 400; r.LateOrLostPct != want {
		t.Fatalf("late or lost %.4f %%, want %.4f", r.LateOrLostPct, want)
	}
}

func TestRTPStatsPauses(t *testing.T) {
	s := &rtpSet{streams: map[uint16]*rtpStream{}}
	src := uint16(4000)
	base := time.Unix(1000, 0).UnixNano()
	frame := int64(20 * time.Millisecond)
	seq, ts := uint16(1), uint32(0)
	send := func(at int64, marker bool) {
		s.packet(rtpPacket(seq, ts, marker), src, at)
		seq++
		ts += 160
	}
	for k := range 50 {
		send(base+int64(k)*frame, k == 0)
	}
	// A pause of 500 ms between prompts (explained), then one of 300 ms (not explained):
	// the RTP clock jumps by the pause, the marker is set.
	ts += 25 * 160
	for k := range 50 {
		send(base+int64(75+k)*frame, k == 0)
	}
	ts += 15 * 160
	for k := range 50 {
		send(base+int64(140+k)*frame, k == 0)
	}
	for _, st := range s.streams {
		st.endTalkspurt()
	}
	explained := func(_ string, a, b int64) bool { return b-a > int64(400*time.Millisecond) }
	r := s.stats(40*time.Millisecond, time.Unix(1000, 0), func(uint16) string { return "1" }, explained)
	if r.Talkspurts != 3 || r.Stalls != 1 || r.StallFrames != 15 || r.Late != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestKernelStamp(t *testing.T) {
	oob := make([]byte, 32)
	binary.NativeEndian.PutUint64(oob[0:], 32)  // cmsg_len
	binary.NativeEndian.PutUint32(oob[8:], 1)   // SOL_SOCKET
	binary.NativeEndian.PutUint32(oob[12:], 35) // SCM_TIMESTAMPNS
	binary.NativeEndian.PutUint64(oob[16:], 7)
	binary.NativeEndian.PutUint64(oob[24:], 5)
	if at, ok := kernelStamp(oob); !ok || at != 7e9+5 {
		t.Fatalf("%v %v", at, ok)
	}
	if _, ok := kernelStamp(oob[:10]); ok {
		t.Fatal("short control message accepted")
	}
}
