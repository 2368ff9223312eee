package telephony

import (
	"errors"
	"strings"
	"testing"
)

func TestParseInfoDTMF(t *testing.T) {
	tests := []struct {
		ct, body string
		want     rune
		err      error
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', nil},
		{"application/dtmf-relay", "Signal= #\nDuration=100", '#', nil},
		{"Application/DTMF-Relay; charset=utf-8", "signal=*\r\n", '*', nil},
		{"application/dtmf-relay", "Duration=160\r\nSignal=10\r\n", '*', nil},
		{"application/dtmf-relay", "Signal=11", '#', nil},
		{"application/dtmf-relay", "Signal=a", 'A', nil},
		{"application/dtmf-relay", "Signal=D", 'D', nil},
		{"application/dtmf-relay", "Signal=E", 0, errNoSignal},
		{"application/dtmf-relay", "Signal=55", 0, errNoSignal},
		{"application/dtmf-relay", "Duration=160", 0, errNoSignal},
		{"application/dtmf-relay", "", 0, errNoSignal},
		{"application/dtmf", "7", '7', nil},
		{"application/dtmf", " 0 \r\n", '0', nil},
		{"application/sdp", "v=0", 0, errUnsupportedInfo},
		{"", "Signal=1", 0, errUnsupportedInfo},
	}
	for _, tt := range tests {
		got, err := parseInfoDTMF(tt.ct, []byte(tt.body))
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("parseInfoDTMF(%q, %q) = %q, %v; want %q, %v", tt.ct, tt.body, got, err, tt.want, tt.err)
		}
	}
}

func FuzzParseInfoDTMF(f *testing.F) {
	f.Add("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")
	f.Add("application/dtmf", "#")
	f.Add("application/dtmf-relay;x=y", "signal=10")
	f.Fuzz(func(t *testing.T, ct, body string) {
		k, err := parseInfoDTMF(ct, []byte(body))
		if err != nil {
			if k != 0 {
				t.Fatalf("key %q with error %v", k, err)
			}
			return
		}
		if !strings.ContainsRune("0123456789*#ABCD", k) {
			t.Fatalf("key %q", k)
		}
	})
}
