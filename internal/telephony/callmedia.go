package telephony

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
)

// mediaConfig is how a server's incoming calls get their RTP sessions.
type mediaConfig struct {
	ip       netip.Addr // RTP sockets bind here
	external net.IP     // advertised in SDP c= lines; nil: ip
	ports    *portRange
	codecs   []media.Codec
}

// legMedia is what a leg needs of its RTP session, whoever negotiated it: ivrd for incoming
// calls (callMedia), diago for the calls Dial places (diagoMedia).
type legMedia interface {
	mediaSession() *media.MediaSession // the negotiated session (codecs)
	packetReader() *media.RTPPacketReader
	packetWriter() *media.RTPPacketWriter
	Close() error
}

// diagoMedia is a dialled call's media, negotiated by diago.
type diagoMedia struct{ *diago.DialogMedia }

func (m diagoMedia) mediaSession() *media.MediaSession    { return m.MediaSession() }
func (m diagoMedia) packetReader() *media.RTPPacketReader { return m.RTPPacketReader }
func (m diagoMedia) packetWriter() *media.RTPPacketWriter { return m.RTPPacketWriter }

var (
	errNotNegotiated = errors.New("telephony: media not negotiated")
	errAnswerPending = errors.New("telephony: an offer of ours awaits its answer")
)

// callMedia is the RTP session of an incoming call. ivrd negotiates it with diago's media
// package itself (rather than through diago's Answer) so that its sockets latch onto the
// caller's RTP (rtpSocket), every offer is checked before diago parses it (sessionDesc), late
// offers work, and re-INVITEs and UPDATEs renegotiate it.
//
// The packet reader and writer stay the same for the call's life; a renegotiation moves them
// to the new session. Methods are safe for concurrent use.
type callMedia struct {
	conf   *mediaConfig
	secure bool // the call's signalling is encrypted: SDES-SRTP may be used
	rtp    *rtpSocket
	rtcp   *rtcpSocket

	mu      sync.Mutex
	sess    *media.MediaSession // the negotiated session; nil before the first offer/answer
	rs      *media.RTPSession
	r       *media.RTPPacketReader
	w       *media.RTPPacketWriter
	offered *media.MediaSession // our offer waiting for its answer (late offer, re-INVITE without SDP)
	remote  *sessionDesc        // the remote description in force
	closed  bool
}

// newCallMedia binds the call's RTP and RTCP sockets; log gets what they latch and drop.
func newCallMedia(conf *mediaConfig, secure bool, log *slog.Logger) (*callMedia, error) {
	rtp, rtcp, err := conf.ports.listen(conf.ip)
	if err != nil {
		return nil, err
	}
	m := &callMedia{conf: conf, secure: secure, rtp: &rtpSocket{conn: rtp,
		onLatch: func(from netip.AddrPort, nat bool) { log.Debug("rtp latched", "from", from, "send_there", nat) },
		onDrop:  func(from netip.AddrPort) { log.Info("rtp from another source dropped", "from", from) },
	}}
	m.rtcp = &rtcpSocket{UDPConn: rtcp, rtp: m.rtp}
	return m, nil
}

// newSession makes an unnegotiated media session on the call's sockets; srtp offers or takes
// SDES-SRTP.
func (m *callMedia) newSession(srtp bool) *media.MediaSession {
	s := &media.MediaSession{Codecs: slices.Clone(m.conf.codecs), ExternalIP: m.conf.external}
	s.InitWithListeners(m.rtp, m.rtcp, &net.UDPAddr{})
	s.Laddr = *m.rtp.LocalAddr().(*net.UDPAddr) // InitWithListeners takes the RTCP socket's
	if srtp {
		s.SecureRTP, s.SRTPAlg = 1, media.SRTPProfileAes128CmHmacSha1_80
	}
	return s
}

// modeFor is the direction ivrd takes towards an offer: a=recvonly is answered a=inactive
// (ivrd then sends nothing), anything else as diago negotiates it (sendonly → recvonly).
func modeFor(sd *sessionDesc) string {
	if sd.dir == dirRecvonly {
		return dirInactive
	}
	return dirSendrecv
}

// answer takes the remote offer sd (checked with acceptable) and returns ivrd's answer; the
// media runs from then on.
func (m *callMedia) answer(sd *sessionDesc, e expectation) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrCallEnded
	}
	return m.takeOfferLocked(m.newSession(sd.proto == protoSRTP), sd, e)
}

// takeOfferLocked negotiates the remote offer sd on the session s and puts it in force; it
// returns ivrd's answer.
func (m *callMedia) takeOfferLocked(s *media.MediaSession, sd *sessionDesc, e expectation) ([]byte, error) {
	s.Mode = modeFor(sd)
	if err := s.RemoteSDP(sd.audioOnly(), false); err != nil {
		return nil, fmt.Errorf("telephony: offer: %w", err)
	}
	ans := sd.completeAnswer(s.LocalSDP(true))
	if err := m.startLocked(s, sd, e); err != nil {
		return nil, err
	}
	return ans, nil
}

// offer returns ivrd's offer for a call whose INVITE had none (late offer): G.711 and
// telephone-event, with an SDES key when the signalling is encrypted. applyAnswer takes the
// answer (from the ACK).
func (m *callMedia) offer() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.newSession(m.secure)
	m.offered = s
	return s.LocalSDP(false)
}

// reofferLocal returns an offer of the session in force, for a re-INVITE that carried none;
// applyAnswer takes the answer from the ACK.
func (m *callMedia) reofferLocal() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return nil, errNotNegotiated
	}
	if m.offered != nil {
		return nil, errAnswerPending
	}
	s := m.sess.Fork()
	s.Mode = dirSendrecv
	m.offered = s
	return s.LocalSDP(false), nil
}

// awaitingAnswer reports whether an offer of ours waits for its answer.
func (m *callMedia) awaitingAnswer() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.offered != nil
}

// dropOffer forgets our pending offer (its answer was unusable).
func (m *callMedia) dropOffer() {
	m.mu.Lock()
	m.offered = nil
	m.mu.Unlock()
}

// applyAnswer takes the remote answer sd to our pending offer. Without one it fails with
// errNotNegotiated; a bad answer leaves the media as it was.
func (m *callMedia) applyAnswer(sd *sessionDesc, e expectation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.offered
	m.offered = nil
	if s == nil || m.closed {
		return errNotNegotiated
	}
	if err := s.RemoteSDP(sd.audioOnly(), true); err != nil {
		return fmt.Errorf("telephony: answer: %w", err)
	}
	return m.startLocked(s, sd, e)
}

// reoffer takes a new remote offer in the call (re-INVITE or UPDATE) and returns ivrd's
// answer. If the offer cannot be taken the media stays as it was.
func (m *callMedia) reoffer(sd *sessionDesc, e expectation) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrCallEnded
	}
	if m.sess == nil {
		return nil, errNotNegotiated
	}
	if m.offered != nil {
		return nil, errAnswerPending
	}
	return m.takeOfferLocked(m.sess.Fork(), sd, e)
}

// startLocked puts the negotiated session s in force: the first one starts the RTP session,
// reader and writer; later ones take its place (the reader and writer move over). The
// sockets latch afresh when the remote media changed (a new SDP version or address).
func (m *callMedia) startLocked(s *media.MediaSession, sd *sessionDesc, e expectation) error {
	if m.rs == nil {
		rs := media.NewRTPSession(s)
		if err := rs.MonitorBackground(); err != nil {
			return fmt.Errorf("telephony: rtp session: %w", err)
		}
		m.rs, m.sess = rs, s
		m.r = media.NewRTPPacketReaderSession(rs)
		m.w = media.NewRTPPacketWriterSession(rs)
		m.w.ClockDisable() // the leg paces itself; the writer's ticker would only cost CPU
	} else {
		if err := m.rs.MonitorClose(); err != nil {
			return fmt.Errorf("telephony: rtp session: %w", err)
		}
		rs := m.rs.Fork(s)
		if err := rs.MonitorBackground(); err != nil {
			return fmt.Errorf("telephony: rtp session: %w", err)
		}
		m.r.UpdateRTPSession(rs)
		m.w.UpdateRTPSession(rs)
		m.w.ClockDisable() // UpdateRTPSession starts it again
		m.rs, m.sess = rs, s
	}
	prev := m.remote
	m.remote = sd
	if prev == nil || prev.version != sd.version || prev.rtpAddr() != sd.rtpAddr() {
		e.sdp = sd.rtpAddr()
		m.rtp.expect(e)
	}
	return nil
}

// remoteDesc returns the remote description in force, nil before the first offer/answer.
func (m *callMedia) remoteDesc() *sessionDesc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.remote
}

// localAddr is the RTP socket's address.
func (m *callMedia) localAddr() netip.AddrPort {
	return m.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (m *callMedia) mediaSession() *media.MediaSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sess
}

func (m *callMedia) packetReader() *media.RTPPacketReader {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.r
}

func (m *callMedia) packetWriter() *media.RTPPacketWriter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.w
}

// Close stops the RTP session and closes the sockets. Idempotent.
func (m *callMedia) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	rs := m.rs
	m.mu.Unlock()
	var err error
	if rs != nil {
		err = rs.MonitorClose()
	}
	return errors.Join(err, m.rtcp.Close(), m.rtp.Close())
}
