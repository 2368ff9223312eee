package softphone

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want Target
		uri  string // String(), "" for the input
	}{
		{"sip:100@127.0.0.1:5060", Target{"100", "127.0.0.1", 5060, TransportUDP}, ""},
		{"sip:100@127.0.0.1", Target{"100", "127.0.0.1", 5060, TransportUDP}, "sip:100@127.0.0.1:5060"},
		{"100@127.0.0.1:5070", Target{"100", "127.0.0.1", 5070, TransportUDP}, "sip:100@127.0.0.1:5070"},
		{"  SIP:100@localhost:5080;transport=TCP ", Target{"100", "localhost", 5080, TransportTCP}, "sip:100@localhost:5080;transport=tcp"},
		{"sip:+6561234567@ivr.example.com;transport=tls", Target{"+6561234567", "ivr.example.com", 5061, TransportTLS}, "sip:+6561234567@ivr.example.com:5061;transport=tls"},
		{"sips:100@10.0.0.1", Target{"100", "10.0.0.1", 5061, TransportTLS}, "sip:100@10.0.0.1:5061;transport=tls"},
		{"sips:100@10.0.0.1:5071;transport=tls", Target{"100", "10.0.0.1", 5071, TransportTLS}, "sip:100@10.0.0.1:5071;transport=tls"},
		{"sip:%2B6561234567@[::1]:5062;user=phone", Target{"+6561234567", "::1", 5062, TransportUDP}, "sip:+6561234567@[::1]:5062"},
		{"sip:100@[2001:db8::5]", Target{"100", "2001:db8::5", 5060, TransportUDP}, "sip:100@[2001:db8::5]:5060"},
		{"sip:alice.smith@pbx.local;transport=udp", Target{"alice.smith", "pbx.local", 5060, TransportUDP}, "sip:alice.smith@pbx.local:5060"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		want := tt.uri
		if want == "" {
			want = strings.TrimSpace(tt.in)
		}
		if got.String() != want {
			t.Errorf("%q: String() = %q, want %q", tt.in, got.String(), want)
		}
	}
	for _, bad := range []string{
		"", "sip:", "127.0.0.1:5060", "sip:127.0.0.1:5060", "sip:@127.0.0.1", "tel:+6561234567",
		"http://100@x", "sip:alice:secret@host", "sip:100@host:0", "sip:100@host:65536", "sip:100@host:",
		"sip:100@host:50x", "sip:100@host;transport=sctp", "sips:100@host;transport=udp", "sip:100@ho st",
		"sip:100@[::1", "sip:100@[127.0.0.1]", "sip:100@[::1]x", "sip:100@host?Subject=x", "sip:1%zz@host",
		"sip:1 0@host", "sip:100@host_name",
	} {
		if got, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want an error", bad, got)
		}
	}
	tr, _ := ParseTarget("sip:100@[::1]:5070;transport=tcp")
	if tr.Trunk() != "sip:[::1]:5070;transport=tcp" {
		t.Errorf("Trunk() = %q", tr.Trunk())
	}
}

// FuzzParseTarget: ParseTarget never panics; what it accepts prints as a URI that sipgo reads
// back to the same target, and that ParseTarget reads back unchanged.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"sip:100@127.0.0.1:5060", "sips:+65@[::1]", "100@h;transport=tcp", "sip:%41@h:1;x=y", "sip:a@b:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if tg.User == "" || tg.Host == "" || tg.Port < 1 || tg.Port > 65535 {
			t.Fatalf("%q: %+v", s, tg)
		}
		again, err := ParseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("%q → %q → %+v, %v", s, tg.String(), again, err)
		}
		var u sip.Uri
		if err := sip.ParseUri(tg.Trunk(), &u); err != nil || u.Port != tg.Port {
			t.Fatalf("%q: sipgo reads the trunk %q as %+v, %v", s, tg.Trunk(), u, err)
		}
	})
}
