package telephony

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/diago/media"
)

const offerPCMU = "v=0\r\no=- 7 3 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"

const sdesKey = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"

func TestParseSDP(t *testing.T) {
	sub := func(old, new string) string { return strings.Replace(offerPCMU, old, new, 1) }
	tests := []struct {
		name      string
		sdp       string
		err       error // of parseSDP
		accept    error // of acceptable(false); nil when parse fails
		acceptTLS error
		sending   bool
		addr      string
		version   uint64
	}{
		{name: "PCMU", sdp: offerPCMU, sending: true, addr: "192.0.2.10:4000", version: 3},
		{name: "PCMA dynamic", sdp: sub("m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000", "m=audio 4000 RTP/AVP 96 101\r\na=rtpmap:96 pcma/8000"), sending: true, addr: "192.0.2.10:4000", version: 3},
		{name: "G.729 and telephone-event", sdp: sub("RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000", "RTP/AVP 18 101\r\na=rtpmap:18 G729/8000"), accept: errNoG711, acceptTLS: errNoG711, sending: true, addr: "192.0.2.10:4000", version: 3},
		{name: "held: inactive", sdp: sub("a=sendrecv", "a=inactive"), addr: "192.0.2.10:4000", version: 3},
		{name: "held: sendonly", sdp: sub("a=sendrecv", "a=sendonly"), addr: "192.0.2.10:4000", version: 3},
		{name: "held: recvonly", sdp: sub("a=sendrecv", "a=recvonly"), addr: "192.0.2.10:4000", version: 3},
		{name: "held: session-level inactive", sdp: sub("t=0 0\r\n", "t=0 0\r\na=inactive\r\n"), sending: true, addr: "192.0.2.10:4000", version: 3},
		{name: "held: c=0.0.0.0", sdp: sub("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0"), addr: "0.0.0.0:4000", version: 3},
		{name: "media-level c= wins", sdp: sub("a=sendrecv", "c=IN IP4 198.51.100.7\r\na=sendrecv"), sending: true, addr: "198.51.100.7:4000", version: 3},
		{name: "SRTP", sdp: sub("RTP/AVP 0 101", "RTP/SAVP 0 101") + sdesKey + "\r\n", accept: errSRTPInsecure, sending: true, addr: "192.0.2.10:4000", version: 3},
		{name: "SRTP without key", sdp: sub("RTP/AVP 0 101", "RTP/SAVP 0 101"), accept: errSRTPInsecure, acceptTLS: errSRTPNoCrypto, sending: true, addr: "192.0.2.10:4000", version: 3},
		{name: "WebRTC profile", sdp: sub("RTP/AVP", "UDP/TLS/RTP/SAVPF"), accept: errSDPProto, acceptTLS: errSDPProto, sending: true, addr: "192.0.2.10:4000", version: 3},
		{name: "no audio", sdp: sub("m=audio", "m=video"), accept: errNoAudio, acceptTLS: errNoAudio},
		{name: "audio declined", sdp: sub("m=audio 4000", "m=audio 0"), accept: errNoAudio, acceptTLS: errNoAudio},
		{name: "two audio streams", sdp: offerPCMU + "m=audio 4002 RTP/AVP 0\r\n", err: errSDPMultiAudio},
		{name: "no c= line", sdp: sub("c=IN IP4 192.0.2.10\r\n", ""), err: errNoConnection},
		{name: "c= without address", sdp: sub("c=IN IP4 192.0.2.10", "c=IN IP4"), err: errSDPSyntax},
		{name: "c= with a name", sdp: sub("c=IN IP4 192.0.2.10", "c=IN IP4 pbx.example"), err: errSDPSyntax},
		{name: "c= IP6 with IPv4", sdp: sub("c=IN IP4 192.0.2.10", "c=IN IP6 192.0.2.10"), err: errSDPSyntax},
		{name: "o= short", sdp: sub("o=- 7 3 IN IP4 192.0.2.10", "o=- 7 3"), err: errSDPSyntax},
		{name: "o= version not a number", sdp: sub("o=- 7 3 ", "o=- 7 x "), err: errSDPSyntax},
		{name: "not type=value", sdp: offerPCMU + "hello\r\n", err: errSDPSyntax},
		{name: "m= port out of range", sdp: sub("m=audio 4000", "m=audio 70000"), err: errSDPSyntax},
		{name: "empty", sdp: "", err: errSDPSyntax},
	}
	for _, tt := range tests {
		sd, err := parseSDP([]byte(tt.sdp))
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%s: parse error %v, want %v", tt.name, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if got := sd.acceptable(false); !errors.Is(got, tt.accept) || (tt.accept == nil) != (got == nil) {
			t.Errorf("%s: acceptable over UDP = %v, want %v", tt.name, got, tt.accept)
		}
		wantTLS := tt.acceptTLS
		if wantTLS == nil && !errors.Is(tt.accept, errSRTPInsecure) {
			wantTLS = tt.accept
		}
		if got := sd.acceptable(true); !errors.Is(got, wantTLS) || (wantTLS == nil) != (got == nil) {
			t.Errorf("%s: acceptable over TLS = %v, want %v", tt.name, got, wantTLS)
		}
		if sd.audio < 0 {
			continue
		}
		if sd.sending() != tt.sending || sd.rtpAddr().String() != tt.addr || sd.version != tt.version {
			t.Errorf("%s: sending %v at %v version %d; want %v at %s version %d", tt.name, sd.sending(), sd.rtpAddr(), sd.version, tt.sending, tt.addr, tt.version)
		}
	}
}

// An offer with video besides audio is answered stream for stream: audio as diago answers it,
// video declined with port 0, in the offer's order.
func TestCompleteAnswer(t *testing.T) {
	offer := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" + "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" +
		"m=text 6000 RTP/AVP 98\r\n"
	sd, err := parseSDP([]byte(offer))
	if err != nil || sd.acceptable(false) != nil {
		t.Fatal(err)
	}
	if only := string(sd.audioOnly()); strings.Contains(only, "video") || strings.Contains(only, "text") || !strings.Contains(only, "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000") {
		t.Fatalf("audioOnly:\n%s", only)
	}
	diagoAnswer := "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=sendrecv\r\n"
	got := string(sd.completeAnswer([]byte(diagoAnswer)))
	want := "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\nm=audio 7000 RTP/AVP 0\r\na=sendrecv\r\nm=text 0 RTP/AVP 98\r\n"
	if got != want {
		t.Errorf("answer:\n%q\nwant\n%q", got, want)
	}
}

// FuzzParseSDP: parseSDP never panics, and whatever it accepts diago's own parser takes
// without panicking (diago indexes c= and o= fields unchecked).
func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(offerPCMU))
	f.Add([]byte(strings.Replace(offerPCMU, "RTP/AVP 0 101", "RTP/SAVP 0 101", 1) + sdesKey + "\r\n"))
	f.Add([]byte("v=0\no=- 1 1 IN IP4 1.2.3.4\nc=IN IP6 ::1\nm=audio 1 RTP/AVP 8\nm=video 0 RTP/AVP 31\n"))
	f.Add([]byte("v=0\no=\nc=IN\nm=audio\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := parseSDP(b)
		if err != nil || sd.acceptable(true) != nil {
			return
		}
		_ = sd.sending()
		s := &media.MediaSession{Codecs: defaultCodecs(), Mode: dirSendrecv}
		if sd.proto == protoSRTP {
			s.SecureRTP, s.SRTPAlg = 1, media.SRTPProfileAes128CmHmacSha1_80
		}
		if err := s.RemoteSDP(sd.audioOnly(), false); err == nil {
			_ = sd.completeAnswer(s.LocalSDP(true))
		}
	})
}
