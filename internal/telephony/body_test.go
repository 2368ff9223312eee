package telephony

import (
	"errors"
	"strings"
	"testing"
)

func TestSDPBody(t *testing.T) {
	const sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
	sipI := "--b1\r\nContent-Type: application/sdp\r\n\r\n" + sdp + "\r\n--b1\r\nContent-Type: application/isup;version=itu-t92+\r\n" +
		"Content-Disposition: signal;handling=optional\r\n\r\n\x01\x00\x49\x00\r\n--b1--\r\n"
	isupFirst := "--b1\r\nContent-Type: application/isup\r\n\r\n\x01\x00\r\n--b1\r\ncontent-type: Application/SDP\r\n\r\n" + sdp + "\r\n--b1--\r\n"
	tests := []struct {
		name, ct, body string
		want           string
		err            error
	}{
		{"sdp", "application/sdp", sdp, sdp, nil},
		{"sdp with parameters", "application/sdp; charset=utf-8", sdp, sdp, nil},
		{"no body", "", "", "", nil},
		{"blank body", "application/sdp", "\r\n", "", nil},
		{"SIP-I: sdp and isup", "multipart/mixed;boundary=b1", sipI, sdp, nil},
		{"isup first, names in other case", "Multipart/Mixed; boundary=\"b1\"", isupFirst, sdp, nil},
		{"isup alone", "multipart/mixed;boundary=b1", "--b1\r\nContent-Type: application/isup\r\n\r\n\x01\r\n--b1--\r\n", "", nil},
		{"another type alone", "application/isup", "\x01\x02", "", nil},
		{"multipart without boundary", "multipart/mixed", sipI, "", errBadBody},
		{"body without content type", "", sdp, "", errBadBody},
		{"unterminated sdp part", "multipart/mixed;boundary=b1", "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n", "", errBadBody},
		{"unterminated other part: no offer", "multipart/mixed;boundary=b1", "--b1\r\nContent-Type: application/isup\r\n\r\n\x01", "", nil},
	}
	for _, tt := range tests {
		got, err := sdpBody(tt.ct, []byte(tt.body))
		if !errors.Is(err, tt.err) || string(got) != tt.want {
			t.Errorf("%s: %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func FuzzSDPBody(f *testing.F) {
	f.Add("multipart/mixed;boundary=b1", "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b1--\r\n")
	f.Add("application/sdp", "v=0\r\n")
	f.Add("multipart/mixed; boundary=\"\"", "----\r\n")
	f.Fuzz(func(t *testing.T, ct, body string) {
		got, err := sdpBody(ct, []byte(body))
		if err == nil && len(got) > len(body) {
			t.Fatalf("part of %d bytes from a body of %d", len(got), len(body))
		}
		if err == nil && got != nil && !strings.Contains(body, string(got)) {
			t.Fatalf("part %q is not in the body", got)
		}
	})
}
