package outbound

import (
	"errors"
	"net/netip"
	"net/url"
	"testing"
)

func TestCheck(t *testing.T) {
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	cases := []struct {
		name   string
		cfg    Config
		addr   string
		selfOK bool
		denied bool
	}{
		{"loopback allowed", Config{}, "127.0.0.1:80", false, false},
		{"other loopback allowed", Config{}, "127.0.0.2:8080", false, false},
		{"ipv6 loopback allowed", Config{}, "[::1]:80", false, false},
		{"private allowed", Config{}, "10.1.2.3:443", false, false},
		{"public allowed", Config{}, "192.0.2.10:80", false, false},
		{"metadata denied", Config{}, "169.254.169.254:80", false, true},
		{"link-local denied", Config{}, "169.254.1.1:8080", false, true},
		{"mapped metadata denied", Config{}, "[::ffff:169.254.169.254]:80", false, true},
		{"aws v6 metadata denied", Config{}, "[fd00:ec2::254]:80", false, true},
		{"other ULA allowed", Config{}, "[fd00:ec2::253]:80", false, false},
		{"v6 link-local denied", Config{}, "[fe80::1]:80", false, true},
		{"v6 link-local with zone denied", Config{}, "[fe80::1%lo]:80", false, true},
		{"this-network denied", Config{}, "0.0.0.0:80", false, true},
		{"this-network range denied", Config{}, "0.1.2.3:80", false, true},
		{"unspecified v6 denied", Config{}, "[::]:80", false, true},
		{"multicast denied", Config{}, "239.1.1.1:80", false, true},
		{"v6 multicast denied", Config{}, "[ff02::1]:80", false, true},
		{"broadcast denied", Config{}, "255.255.255.255:80", false, true},
		{"deny flag", Config{Deny: pfx("127.0.0.2/32")}, "127.0.0.2:80", false, true},
		{"deny flag, other address", Config{Deny: pfx("127.0.0.2/32")}, "127.0.0.1:80", false, false},
		{"deny flag matches mapped", Config{Deny: pfx("10.0.0.0/8")}, "[::ffff:10.9.9.9]:80", false, true},
		{"allow beats builtin", Config{Allow: pfx("169.254.169.254/32")}, "169.254.169.254:80", false, false},
		{"allow beats deny flag", Config{Allow: pfx("10.1.0.0/16"), Deny: pfx("10.0.0.0/8")}, "10.1.2.3:80", false, false},
		{"allow elsewhere", Config{Allow: pfx("10.1.0.0/16"), Deny: pfx("10.0.0.0/8")}, "10.2.2.3:80", false, true},
		{"self exact", Config{Self: netip.MustParseAddrPort("127.0.0.1:8080")}, "127.0.0.1:8080", false, true},
		{"self other port", Config{Self: netip.MustParseAddrPort("127.0.0.1:8080")}, "127.0.0.1:8081", false, false},
		{"self other address", Config{Self: netip.MustParseAddrPort("127.0.0.1:8080")}, "127.0.0.2:8080", false, false},
		{"self path allowed", Config{Self: netip.MustParseAddrPort("127.0.0.1:8080")}, "127.0.0.1:8080", true, false},
		{"self not overridden by allow", Config{Self: netip.MustParseAddrPort("127.0.0.1:8080"), Allow: pfx("127.0.0.0/8")}, "127.0.0.1:8080", false, true},
		{"self on any: loopback", Config{Self: netip.MustParseAddrPort("0.0.0.0:8080")}, "127.0.0.9:8080", false, true},
		{"self on any: v6 loopback", Config{Self: netip.MustParseAddrPort("[::]:8080")}, "[::1]:8080", false, true},
		{"self on any: other port", Config{Self: netip.MustParseAddrPort("0.0.0.0:8080")}, "127.0.0.9:8081", false, false},
		{"invalid", Config{}, "", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ap netip.AddrPort
			if c.addr != "" {
				ap = netip.MustParseAddrPort(c.addr)
			}
			err := New(c.cfg).Check(ap, c.selfOK)
			if (err != nil) != c.denied {
				t.Fatalf("Check(%s) = %v, want denied %v", c.addr, err, c.denied)
			}
			if err != nil && !errors.Is(err, ErrDenied) {
				t.Fatalf("refusal %v does not wrap ErrDenied", err)
			}
		})
	}
	if err := (*Policy)(nil).Check(netip.MustParseAddrPort("169.254.169.254:80"), false); err != nil {
		t.Fatalf("nil policy refused: %v", err)
	}
}

// The machine's own interface addresses count as ivrd's listener when it listens on 0.0.0.0.
func TestCheckSelfOnEveryAddress(t *testing.T) {
	p := New(Config{Self: netip.MustParseAddrPort("0.0.0.0:8080")})
	p.isLocal(netip.Addr{}) // fill the cache
	n := 0
	for a := range p.locals {
		n++
		if err := p.Check(netip.AddrPortFrom(a, 8080), false); err == nil {
			t.Errorf("local address %s at ivrd's port allowed", a)
		}
	}
	if n == 0 {
		t.Fatal("no local interface addresses found")
	}
}

func TestCheckURL(t *testing.T) {
	p := New(Config{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Self: netip.MustParseAddrPort("127.0.0.1:8080"),
		SelfPaths: []string{"/demo/notify", "/recordings/"}})
	cases := []struct {
		url    string
		addrs  []string
		denied bool
	}{
		{"http://app.example/n", []string{"127.0.0.1"}, false},
		{"http://app.example/n", []string{"127.0.0.2"}, true},
		{"http://app.example/n", []string{"127.0.0.2", "127.0.0.3"}, false}, // one allowed address is enough
		{"http://app.example/n", []string{"169.254.169.254", "fe80::1"}, true},
		{"http://app.example/n", nil, true},
		{"http://app.example/n", []string{"not-an-ip"}, true},
		{"http://127.0.0.1:8080/open/ivr/end/hangup?x=1", []string{"127.0.0.1"}, true},
		{"http://127.0.0.1:8080/demo/notify", []string{"127.0.0.1"}, false},
		{"http://127.0.0.1:8080/demo/notify/x", []string{"127.0.0.1"}, true},
		{"http://127.0.0.1:8080/recordings/rec-1.mp3?Expires=1&Signature=x", []string{"127.0.0.1"}, false},
		{"http://127.0.0.1:8080/recordings/../open/ivr/end/hangup", []string{"127.0.0.1"}, true},
		{"http://127.0.0.1:8080/recordings/%2e%2e/open/ivr/end/hangup", []string{"127.0.0.1"}, true},
		{"http://127.0.0.1:8080/recordings", []string{"127.0.0.1"}, true},
		{"http://127.0.0.1/n", []string{"127.0.0.1"}, false}, // port 80, not ivrd's
		{"https://127.0.0.1:8080/n", []string{"127.0.0.1"}, true},
		{"http://app.example:0/n", []string{"127.0.0.1"}, true},
	}
	for _, c := range cases {
		u, _ := url.Parse(c.url)
		err := p.CheckURL(u, c.addrs)
		if (err != nil) != c.denied {
			t.Errorf("CheckURL(%s, %v) = %v, want denied %v", c.url, c.addrs, err, c.denied)
		}
		if err != nil && !errors.Is(err, ErrDenied) {
			t.Errorf("refusal %v does not wrap ErrDenied", err)
		}
	}
}

// FuzzCheckURL: any URL and address text is answered (never a panic), and a refusal always
// wraps ErrDenied.
func FuzzCheckURL(f *testing.F) {
	f.Add("http://127.0.0.1:8080/recordings/../x", "127.0.0.1")
	f.Add("https://[fe80::1%25eth0]:443/n", "fe80::1%eth0")
	f.Add("http://app.example:99999/", "::ffff:169.254.169.254")
	p := New(Config{Deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Self: netip.MustParseAddrPort("0.0.0.0:8080"),
		SelfPaths: []string{"/demo/notify", "/recordings/"}})
	f.Fuzz(func(t *testing.T, raw, addr string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		if err := p.CheckURL(u, []string{addr}); err != nil && !errors.Is(err, ErrDenied) {
			t.Fatalf("CheckURL(%q, %q) = %v, not an ErrDenied", raw, addr, err)
		}
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			if err := p.Check(ap, false); err != nil && !errors.Is(err, ErrDenied) {
				t.Fatalf("Check(%s) = %v", ap, err)
			}
		}
	})
}
