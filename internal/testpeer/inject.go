package testpeer

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// InjectRTP sends pcm as PCMU RTP with SSRC ssrc to dst, 20 ms a packet in real time, from a
// socket of its own on 127.0.0.1: a stranger's stream aimed at a call's RTP port. It returns
// when all is sent or ctx ends.
func InjectRTP(ctx context.Context, dst netip.AddrPort, ssrc uint32, pcm []int16) error {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer c.Close()
	pkt := make([]byte, 12+audio.FrameSamples)
	pkt[0] = 0x80 // version 2; payload type 0 (PCMU)
	binary.BigEndian.PutUint32(pkt[8:], ssrc)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for i := 0; i+audio.FrameSamples <= len(pcm); i += audio.FrameSamples {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i/audio.FrameSamples))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i))
		copy(pkt[12:], audio.EncodeUlaw(nil, pcm[i:i+audio.FrameSamples]))
		if _, err := c.WriteToUDPAddrPort(pkt, dst); err != nil {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
