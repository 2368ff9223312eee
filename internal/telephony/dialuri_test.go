package telephony

import (
	"strings"
	"testing"
)

func TestDialURI(t *testing.T) {
	tests := []struct {
		trunk, dest string
		want        string // "" = error
	}{
		{"127.0.0.1:5070", "+6590000001", "sip:+6590000001@127.0.0.1:5070"},
		{"sip:127.0.0.1:5070", "6590000001", "sip:6590000001@127.0.0.1:5070"},
		{"SIP:trunk.example.com", "+65", "sip:+65@trunk.example.com"},
		{"sip:olduser@10.0.0.1:5060", "+65", "sip:+65@10.0.0.1:5060"},
		{"sip:10.0.0.1:5060;transport=udp", "100", "sip:100@10.0.0.1:5060;transport=udp"},
		{" 127.0.0.1:5070 ", "100", "sip:100@127.0.0.1:5070"},
		{"", "+65", ""},
		{"sip:", "+65", ""},
		{"127.0.0.1:5070", "", ""},
		{"127.0.0.1:5070", "+65 1", ""},
		{"127.0.0.1:5070", "65@evil", ""},
		{"127.0.0.1:5070", strings.Repeat("1", 65), ""},
	}
	for _, tt := range tests {
		uri, err := dialURI(tt.trunk, tt.dest)
		if tt.want == "" {
			if err == nil {
				t.Errorf("dialURI(%q, %q) = %s, want an error", tt.trunk, tt.dest, uri.String())
			}
			continue
		}
		if err != nil || uri.String() != tt.want {
			t.Errorf("dialURI(%q, %q) = %s, %v; want %s", tt.trunk, tt.dest, uri.String(), err, tt.want)
		}
	}
}

func FuzzDialURI(f *testing.F) {
	f.Add("sip:127.0.0.1:5070", "+6590000001")
	f.Add("trunk.example.com;transport=udp", "100")
	f.Add("sips:u:p@[::1]:5061", "+1")
	f.Fuzz(func(t *testing.T, trunk, dest string) {
		uri, err := dialURI(trunk, dest)
		if err != nil {
			return
		}
		if uri.User != dest || uri.Host == "" || uri.Password != "" || !validUser(dest) {
			t.Fatalf("dialURI(%q, %q) = %+v", trunk, dest, uri)
		}
	})
}
