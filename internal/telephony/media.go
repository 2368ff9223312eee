package telephony

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"

	"github.com/ivrd/ivrd/internal/audio"
)

// RTP static payload types of G.711.
const (
	ptPCMU = 0
	ptPCMA = 8
)

// setCodecs records the negotiated payload types of sess: the audio codec we send (PCMU or
// PCMA) and the telephone-event type we receive, if any.
func (l *Leg) setCodecs(sess *media.MediaSession) {
	if sess == nil {
		return
	}
	codec := media.CodecAudioFromSession(sess)
	l.audioPT.Store(int32(codec.PayloadType))
	dtmf := int32(-1)
	for _, c := range sess.CommonCodecs() {
		if isTelephoneEvent(c.Name) && c.SampleRate == audio.Rate {
			dtmf = int32(c.PayloadTypeRecv())
			break
		}
	}
	l.dtmfPT.Store(dtmf)
}

// mediaUpdated follows a re-INVITE that renegotiated a dialled call's media (diago's).
func (l *Leg) mediaUpdated(med *diago.DialogMedia) {
	if w := med.RTPPacketWriter; w != nil {
		w.ClockDisable() // diago starts it again with the new session
	}
	l.setCodecs(med.MediaSession())
	l.log.Debug("media updated", "audio_pt", l.audioPT.Load(), "dtmf_pt", l.dtmfPT.Load())
}

// mediaRenegotiated follows an incoming call's new offer/answer: codecs, and whether the
// caller holds the call (then nothing is sent until it resumes).
func (l *Leg) mediaRenegotiated(cm *callMedia) {
	l.setCodecs(cm.mediaSession())
	held := !cm.remoteDesc().sending()
	if l.held.Swap(held) != held {
		l.log.Info("caller hold", "held", held)
	}
	if held {
		// A frame being sent (it saw the call not held) goes out before the answer does, so
		// nothing reaches the caller after it holds.
		l.fenceSender()
	}
}

// mediaIn is how a leg takes its incoming RTP: through diago's reader (which keeps the RTCP
// statistics and decrypts SRTP), with its DTMF detector.
type mediaIn struct {
	r      *media.RTPPacketReader
	sock   *rtpSocket // the socket its pacer polls (an incoming call); nil: a goroutine reads r
	det    dtmfDetector
	logged bool // a receive error has been logged
}

// maxRxBatches bounds the batches one poll takes from a socket (8 packets each): the rest of
// a backlog waits for the next poll.
const maxRxBatches = 16

// rxScratch is a pacer's buffers for polling its legs' sockets.
type rxScratch struct {
	batch *rxBatch
	buf   []byte // diago's reader wants media.RTPBufSize
	pcm   []int16
}

func newRxScratch() *rxScratch {
	return &rxScratch{batch: newRxBatch(), buf: make([]byte, media.RTPBufSize),
		pcm: make([]int16, 0, audio.FrameSamples)}
}

// pollMedia takes every packet waiting on the leg's polled RTP socket, each at the time it
// arrived; the leg's pacer calls it every 20 ms, with the sender's lock held (so nothing is
// taken once the sender has stopped).
func (l *Leg) pollMedia(in *mediaIn, sc *rxScratch) {
	sock := in.sock
	defer func() { sock.staged = nil }()
	for range maxRxBatches {
		if err := sock.receive(sc.batch); err != nil {
			if !in.logged && !l.ended.Load() {
				in.logged = true
				l.log.Warn("rtp receive failed", "err", err)
			}
			return
		}
		// Each Read takes at least one staged packet until none is left: bounded.
		for range len(sc.batch.pkts) + 1 {
			n, err := in.r.Read(sc.buf)
			if errors.Is(err, errNoPacket) || errors.Is(err, io.EOF) {
				break
			}
			if err != nil || n == 0 {
				continue // a malformed packet, or no payload
			}
			sc.pcm = l.takePacket(in, sc.buf[:n], sc.pcm, sock.at)
		}
		if !sc.batch.full() {
			return
		}
	}
}

// readMedia drains the RTP of a call whose socket is not polled (a dialled call's, diago's)
// until the media is closed. diago's reader must be drained continuously or RTP and RTCP
// processing stall.
func (l *Leg) readMedia(in *mediaIn, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, media.RTPBufSize)
	pcm := make([]int16, 0, audio.FrameSamples)
	failures := 0
	for {
		n, err := in.r.Read(buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || l.ended.Load() {
				return
			}
			// Malformed packets land here; back off if the error persists.
			failures++
			if failures > 20 {
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		failures = 0
		if n == 0 {
			continue
		}
		pcm = l.takePacket(in, buf[:n], pcm, time.Now())
	}
}

// takePacket hands the payload of the packet in.r just read, which arrived at at, to where it
// goes: G.711 audio to the tap (and the bridge or room), telephone-event packets to the DTMF
// detector (never to the tap); anything else is dropped. pcm is scratch; it is returned.
func (l *Leg) takePacket(in *mediaIn, payload []byte, pcm []int16, at time.Time) []int16 {
	h := &in.r.PacketHeader
	switch pt := int32(h.PayloadType); {
	case pt == l.dtmfPT.Load():
		if key, ok := in.det.feed(h.SSRC, h.Timestamp, payload, at); ok {
			l.digit(key)
		}
	case pt == ptPCMU:
		pcm = audio.DecodeUlaw(pcm[:0], payload)
		l.inbound(pcm, at)
	case pt == ptPCMA:
		pcm = audio.DecodeAlaw(pcm[:0], payload)
		l.inbound(pcm, at)
	}
	return pcm
}

func (l *Leg) inbound(pcm []int16, at time.Time) {
	if m := l.member.Load(); m != nil {
		m.in.push(pcm) // to the bridge or room the leg is in
	}
	l.tapMu.RLock()
	if l.tap != nil {
		l.tap.Inbound(pcm, at)
	}
	l.tapMu.RUnlock()
}

func (l *Leg) outbound(pcm []int16, at time.Time) {
	l.tapMu.RLock()
	if l.tap != nil {
		l.tap.Outbound(pcm, at)
	}
	l.tapMu.RUnlock()
}

// digit queues a key for the OnDTMF function; it never blocks the media reader. A goroutine
// calls the function for the queued keys, in order, and exits when the queue is empty.
func (l *Leg) digit(key rune) {
	select {
	case l.digits <- key:
	default:
		l.log.Warn("dtmf queue full, key dropped", "key", string(key))
	}
	if l.dispatching.CompareAndSwap(false, true) {
		go l.dispatchDigits()
	}
}

// dispatchDigits calls the OnDTMF function for each queued key until the queue is empty.
func (l *Leg) dispatchDigits() {
	for {
		select {
		case key := <-l.digits:
			if f := l.onDTMF.Load(); f != nil && !l.ended.Load() {
				(*f)(key)
			}
		default:
			l.dispatching.Store(false)
			// A key queued after the queue looked empty and before the flag dropped has
			// seen the flag set: carry on with it, unless another goroutine took over.
			if len(l.digits) == 0 || !l.dispatching.CompareAndSwap(false, true) {
				return
			}
		}
	}
}
