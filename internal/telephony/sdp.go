package telephony

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SDP media directions (RFC 4566 §6).
const (
	dirSendrecv = "sendrecv"
	dirSendonly = "sendonly"
	dirRecvonly = "recvonly"
	dirInactive = "inactive"
)

// SDP transport protocols ivrd takes for its audio stream.
const (
	protoRTP  = "RTP/AVP"
	protoSRTP = "RTP/SAVP"
)

// sdesSuite is the one SDES crypto suite diago's SRTP speaks (RFC 4568 §6.2.1).
const sdesSuite = "AES_CM_128_HMAC_SHA1_80"

// sdesKeyLen is the length of its inline key: a 16-byte master key and a 14-byte salt.
const sdesKeyLen = 30

var (
	errSDPSyntax     = errors.New("telephony: malformed SDP")
	errNoAudio       = errors.New("telephony: SDP offers no audio stream")
	errNoG711        = errors.New("telephony: SDP offers neither PCMU nor PCMA")
	errSDPProto      = errors.New("telephony: SDP audio transport not supported")
	errSRTPInsecure  = errors.New("telephony: SRTP keys offered over an unencrypted transport")
	errSRTPNoCrypto  = errors.New("telephony: SRTP offered without a usable a=crypto line")
	errNoConnection  = errors.New("telephony: SDP audio stream has no connection address")
	errSDPMultiAudio = errors.New("telephony: SDP offers more than one active audio stream")
)

// sdpMedia is one m= section of a session description.
type sdpMedia struct {
	kind    string // "audio", "video", ...
	port    int    // 0: the stream is declined or disabled
	proto   string
	formats []string
	lines   []string // the section's lines after its m= line
}

// sessionDesc is what ivrd reads of a remote session description (an offer, or the answer to
// ours): enough to refuse what it cannot take before diago parses it, to see holds, and to
// answer the streams it declines. It is produced by parseSDP only.
type sessionDesc struct {
	session []string   // session-level lines (before the first m=)
	media   []sdpMedia // in order
	audio   int        // index of the audio stream ivrd uses; -1 when none is usable
	version uint64     // o= session version

	addr  netip.Addr // connection address of the audio stream; unspecified (0.0.0.0) on hold
	port  int        // its RTP port
	proto string
	dir   string // its direction as the remote end states it (media level wins)
	g711  bool   // PCMU or PCMA offered
	sdes  bool   // an a=crypto line with sdesSuite and a well-formed key
}

// parseSDP reads a session description. It fails (errSDPSyntax) on anything diago's own
// parser could not take safely: lines that are not type=value, an o= line without numeric
// session id and version, a c= line without network type, address type and an IP address.
// An SDP without a usable audio stream is not a syntax error: audio is -1 then.
func parseSDP(body []byte) (*sessionDesc, error) {
	sd := &sessionDesc{audio: -1}
	var cur *sdpMedia
	sawVersion, sawOrigin := false, false
	for line := range strings.Lines(string(body)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return nil, fmt.Errorf("%w: line %q", errSDPSyntax, clip(line))
		}
		key, val := line[0], line[2:]
		switch key {
		case 'v':
			sawVersion = true
		case 'o':
			f := strings.Fields(val)
			if len(f) < 6 {
				return nil, fmt.Errorf("%w: o= line", errSDPSyntax)
			}
			if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
				return nil, fmt.Errorf("%w: o= session id", errSDPSyntax)
			}
			v, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: o= version", errSDPSyntax)
			}
			sd.version, sawOrigin = v, true
		case 'c':
			if _, err := parseConnection(val); err != nil {
				return nil, err
			}
		case 'm':
			f := strings.Fields(val)
			if len(f) < 4 {
				return nil, fmt.Errorf("%w: m= line", errSDPSyntax)
			}
			port, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
			if err != nil || port < 0 || port > 65535 {
				return nil, fmt.Errorf("%w: m= port", errSDPSyntax)
			}
			sd.media = append(sd.media, sdpMedia{kind: f[0], port: port, proto: f[2], formats: f[3:]})
			cur = &sd.media[len(sd.media)-1]
			continue
		}
		if cur == nil {
			sd.session = append(sd.session, line)
		} else {
			cur.lines = append(cur.lines, line)
		}
	}
	if !sawVersion || !sawOrigin {
		return nil, fmt.Errorf("%w: no v= or o= line", errSDPSyntax)
	}
	for i := range sd.media {
		if sd.media[i].kind == "audio" && sd.media[i].port > 0 {
			if sd.audio >= 0 {
				return sd, errSDPMultiAudio
			}
			sd.audio = i
		}
	}
	if sd.audio < 0 {
		return sd, nil
	}
	m := &sd.media[sd.audio]
	sd.port, sd.proto = m.port, m.proto
	sd.dir = dirSendrecv
	conn := ""
	for _, lines := range [][]string{sd.session, m.lines} { // media level last: it wins
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, "c="):
				conn = l[2:]
			case l == "a="+dirSendrecv || l == "a="+dirSendonly || l == "a="+dirRecvonly || l == "a="+dirInactive:
				sd.dir = l[2:]
			}
		}
	}
	if conn == "" {
		return sd, errNoConnection
	}
	sd.addr, _ = parseConnection(conn) // checked above
	sd.g711 = offersG711(m.formats, m.lines)
	sd.sdes = hasSDES(m.lines)
	return sd, nil
}

// parseConnection reads a c= value: "IN IP4 192.0.2.1" (a TTL or count suffix is ignored).
func parseConnection(val string) (netip.Addr, error) {
	f := strings.Fields(val)
	if len(f) < 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return netip.Addr{}, fmt.Errorf("%w: c= line", errSDPSyntax)
	}
	a, err := netip.ParseAddr(strings.SplitN(f[2], "/", 2)[0])
	if err != nil || a.Zone() != "" || (f[1] == "IP4") != a.Is4() {
		return netip.Addr{}, fmt.Errorf("%w: c= address", errSDPSyntax)
	}
	return a, nil
}

// offersG711 reports whether formats hold PCMU or PCMA at 8 kHz: the static payload types 0
// and 8, or a dynamic one mapped to either name.
func offersG711(formats, lines []string) bool {
	for _, f := range formats {
		if f == "0" || f == "8" {
			return true
		}
		prefix := "a=rtpmap:" + f + " "
		for _, l := range lines {
			name, ok := strings.CutPrefix(l, prefix)
			fields := strings.Fields(name)
			if !ok || len(fields) == 0 {
				continue
			}
			enc := strings.ToUpper(fields[0])
			if enc == "PCMU/8000" || enc == "PCMA/8000" || enc == "PCMU/8000/1" || enc == "PCMA/8000/1" {
				return true
			}
		}
	}
	return false
}

// hasSDES reports whether lines hold an a=crypto line of sdesSuite with a well-formed inline key.
func hasSDES(lines []string) bool {
	for _, l := range lines {
		v, ok := strings.CutPrefix(l, "a=crypto:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 3 || f[1] != sdesSuite {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			continue
		}
		key, ok := strings.CutPrefix(f[2], "inline:")
		if !ok {
			continue
		}
		key, _, _ = strings.Cut(key, "|") // lifetime and MKI
		if b, err := base64.StdEncoding.DecodeString(key); err == nil && len(b) == sdesKeyLen {
			return true
		}
	}
	return false
}

// acceptable says whether ivrd can answer this offer: one audio stream, over RTP/AVP (or
// RTP/SAVP with an SDES key, on a call whose signalling is encrypted), offering G.711.
func (sd *sessionDesc) acceptable(secureSignalling bool) error {
	if sd.audio < 0 {
		return errNoAudio
	}
	switch sd.proto {
	case protoRTP:
	case protoSRTP:
		if !secureSignalling {
			return errSRTPInsecure
		}
		if !sd.sdes {
			return errSRTPNoCrypto
		}
	default:
		return fmt.Errorf("%w: %q", errSDPProto, sd.proto)
	}
	if !sd.g711 {
		return errNoG711
	}
	return nil
}

// sending reports whether the remote end wants our audio: not on hold (a=sendonly,
// a=inactive, a=recvonly, or the old c=0.0.0.0 form) and the stream not disabled.
//
// a=recvonly is the remote end asking only to receive; ivrd answers it a=inactive and sends
// nothing, as it does for the holds proper.
func (sd *sessionDesc) sending() bool {
	return sd.audio >= 0 && sd.dir == dirSendrecv && sd.addr.IsValid() && !sd.addr.IsUnspecified() && sd.port > 0
}

// rtpAddr is where the description says to send RTP.
func (sd *sessionDesc) rtpAddr() netip.AddrPort {
	return netip.AddrPortFrom(sd.addr, uint16(sd.port))
}

// audioOnly returns the description with only its session-level lines and the audio stream:
// diago's media session takes exactly one m= line.
func (sd *sessionDesc) audioOnly() []byte {
	var b bytes.Buffer
	for _, l := range sd.session {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	if sd.audio >= 0 {
		m := &sd.media[sd.audio]
		fmt.Fprintf(&b, "m=%s %d %s %s\r\n", m.kind, m.port, m.proto, strings.Join(m.formats, " "))
		for _, l := range m.lines {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
	return b.Bytes()
}

// completeAnswer turns diago's one-stream answer into an answer to the whole offer (RFC 3264
// §6): the same m= lines in the same order, every stream but the audio one declined (port 0).
func (sd *sessionDesc) completeAnswer(answer []byte) []byte {
	if len(sd.media) <= 1 {
		return answer
	}
	i := bytes.Index(answer, []byte("\nm="))
	if i < 0 {
		return answer
	}
	head, audio := answer[:i+1], answer[i+1:]
	out := append([]byte(nil), head...)
	for k, m := range sd.media {
		if k == sd.audio {
			out = append(out, audio...)
			continue
		}
		f := "0"
		if len(m.formats) > 0 {
			f = m.formats[0]
		}
		out = fmt.Appendf(out, "m=%s 0 %s %s\r\n", m.kind, m.proto, f)
	}
	return out
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
