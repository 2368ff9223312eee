package telephony

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestBestContact(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string // "" = none
	}{
		{"one", []string{"<sip:+6590000009@10.0.0.2:5060>"}, "sip:+6590000009@10.0.0.2:5060"},
		{"addr-spec", []string{"sip:100@10.0.0.2"}, "sip:100@10.0.0.2"},
		{"highest q", []string{"<sip:1@a.example>;q=0.5, <sip:2@b.example>;q=0.9", "<sip:3@c.example>;q=0.7"}, "sip:2@b.example"},
		{"first of equals", []string{"<sip:1@a.example>", "<sip:2@b.example>"}, "sip:1@a.example"},
		{"transport kept", []string{"<sip:1@a.example:5080;transport=tcp>;expires=60"}, "sip:1@a.example:5080;transport=tcp"},
		{"display name with comma", []string{`"Sales, 2nd floor" <sip:200@a.example>`}, "sip:200@a.example"},
		{"password and headers dropped", []string{"<sip:1:secret@a.example?Subject=x>"}, "sip:1@a.example"},
		{"tel skipped", []string{"<tel:+6590000009>, <sip:9@a.example>;q=0.1"}, "sip:9@a.example"},
		{"bad q skipped", []string{"<sip:1@a.example>;q=2", "<sip:2@b.example>;q=x"}, ""},
		{"no host", []string{"<sip:>"}, ""},
		{"odd user", []string{"<sip:a%40b@a.example>"}, ""},
		{"none", nil, ""},
		{"star", []string{"*"}, ""},
	}
	for _, tt := range tests {
		got, ok := bestContact(tt.values)
		switch {
		case tt.want == "" && ok:
			t.Errorf("%s: %s, want none", tt.name, got.String())
		case tt.want != "" && (!ok || got.String() != tt.want):
			t.Errorf("%s: %s (%v), want %s", tt.name, got.String(), ok, tt.want)
		}
	}
}

func FuzzBestContact(f *testing.F) {
	f.Add(`"A, B" <sip:1@a.example>;q=0.5, <sip:2@b.example:5080;transport=tcp>`)
	f.Add("sip:100@10.0.0.2;q=1")
	f.Add(`"\"<" <sips:x@y>,,<`)
	f.Fuzz(func(t *testing.T, v string) {
		uri, ok := bestContact([]string{v})
		if !ok {
			return
		}
		s := strings.ToLower(uri.Scheme)
		if s != "sip" && s != "sips" || uri.Host == "" || uri.Password != "" || uri.User != "" && !validUser(uri.User) {
			t.Fatalf("bestContact(%q) = %+v", v, uri)
		}
	})
}

func TestGrantedExpiry(t *testing.T) {
	ours := sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1", Port: 5060}
	res := func(headers ...string) *sip.Response {
		r := sip.NewResponse(200, "OK")
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ": ")
			r.AppendHeader(sip.NewHeader(name, value))
		}
		return r
	}
	tests := []struct {
		name string
		res  *sip.Response
		want time.Duration
	}{
		{"our contact's expires", res("Contact: <sip:bob@10.0.0.9:5060>;expires=30, <sip:alice@127.0.0.1:5060;transport=udp>;expires=60", "Expires: 90"), 60 * time.Second},
		{"Expires header", res("Contact: <sip:bob@10.0.0.9:5060>;expires=30", "Expires: 90"), 90 * time.Second},
		{"nothing: as asked", res(), 600 * time.Second},
		{"zero granted", res("Contact: <sip:alice@127.0.0.1:5060>;expires=0"), 0},
		{"bad value", res("Contact: <sip:alice@127.0.0.1:5060>;expires=x", "Expires: 45"), 45 * time.Second},
		{"negative", res("Contact: <sip:alice@127.0.0.1:5060>;expires=-5", "Expires: 45"), 45 * time.Second},
		{"beyond 2^32-1", res("Expires: 99999999999999999"), (1<<32 - 1) * time.Second},
	}
	for _, tt := range tests {
		if got := grantedExpiry(tt.res, ours, 600*time.Second); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzGrantedExpiry(f *testing.F) {
	f.Add("<sip:alice@127.0.0.1:5060>;expires=60, <sip:bob@h>;expires=5", "90")
	f.Add(`"a,b" <sip:alice@127.0.0.1:5060;transport=tcp>;expires=-1`, "x")
	f.Fuzz(func(t *testing.T, contact, expires string) {
		if strings.ContainsAny(contact+expires, "\r\n") {
			return
		}
		r := sip.NewResponse(200, "OK")
		r.AppendHeader(sip.NewHeader("Contact", contact))
		r.AppendHeader(sip.NewHeader("Expires", expires))
		if got := grantedExpiry(r, sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1", Port: 5060}, time.Minute); got < 0 {
			t.Fatalf("granted %v", got)
		}
	})
}
