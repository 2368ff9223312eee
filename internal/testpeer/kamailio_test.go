package testpeer

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// The provider as a caller without credentials sees it: a call to a routed number is
// challenged (407), a call to a DID with nobody registered is refused (480), and Kamailio
// reports both as events.
func TestKamailioProvider(t *testing.T) {
	if !Available() {
		t.Skip("sipp not installed")
	}
	k := Kamailio{User: "alice", Password: "s3cret", Routes: map[string]string{"+6590000001": "127.0.0.1:9"},
		DIDs: []string{"6561234567"}}.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		number string
		status int
		event  string
	}{
		{"+6590000001", 407, "challenge"},
		{"6561234567", 480, "unregistered"},
	} {
		res, err := Call{Target: k.Addr, Number: c.number, Timeout: 10 * time.Second}.Run(ctx)
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.number, err, res.Trace)
		}
		if res.Status != c.status {
			t.Fatalf("call to %s through kamailio: %d, want %d", c.number, res.Status, c.status)
		}
		if evs := k.WaitEvents(c.event, 1, 2*time.Second); len(evs) != 1 {
			t.Fatalf("kamailio %s events: %v (all: %v)", c.event, evs, k.Events(""))
		}
	}
}

func TestParseKamailioEvent(t *testing.T) {
	at := time.Now()
	for _, c := range []struct {
		in     string
		kind   string
		fields map[string]string
	}{
		{"registered user=alice contact=<sip:alice@127.0.0.1:5060>;expires=4 expires=<null>", "registered",
			map[string]string{"user": "alice", "contact": "<sip:alice@127.0.0.1:5060>;expires=4", "expires": "<null>"}},
		{"noroute", "noroute", map[string]string{}},
		{"", "", map[string]string{}},
	} {
		ev := parseKamailioEvent(c.in, at)
		if ev.Kind != c.kind || len(ev.Fields) != len(c.fields) || !ev.At.Equal(at) {
			t.Fatalf("%q: %+v", c.in, ev)
		}
		for k, v := range c.fields {
			if ev.Fields[k] != v {
				t.Fatalf("%q: %s=%q, want %q", c.in, k, ev.Fields[k], v)
			}
		}
	}
}

func FuzzParseKamailioEvent(f *testing.F) {
	f.Add("registered user=alice contact=<sip:alice@127.0.0.1:5060>;expires=4 expires=600")
	f.Add("  = ==x")
	f.Fuzz(func(t *testing.T, s string) {
		ev := parseKamailioEvent(s, time.Time{})
		if strings.ContainsAny(ev.Kind, " \t\n") {
			t.Fatalf("kind %q", ev.Kind)
		}
	})
}

// With TLS the provider takes SIP over TLS with the test's certificate, which a client that
// trusts the test authority accepts: a request over it is answered and seen as TLS.
func TestKamailioTLS(t *testing.T) {
	files, err := NewTLSFiles(t.TempDir(), net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	k := Kamailio{User: "alice", Password: "s3cret", TLS: &files}.Start(t)
	if k.AddrTLS == "" || k.AddrTLS == k.Addr {
		t.Fatalf("TLS address %q (plain %q)", k.AddrTLS, k.Addr)
	}
	roots := x509.NewCertPool()
	ca, err := os.ReadFile(files.CA)
	if err != nil || !roots.AppendCertsFromPEM(ca) {
		t.Fatal("the test authority:", err)
	}
	c, err := tls.Dial("tcp", k.AddrTLS, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host, port, _ := net.SplitHostPort(c.LocalAddr().String())
	fmt.Fprintf(c, "OPTIONS sip:%s;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS %s:%s;branch=z9hG4bK-tls-1\r\n"+
		"From: <sip:probe@%s>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: tls-probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		k.AddrTLS, host, port, host, k.AddrTLS)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 405") {
		t.Fatalf("response over TLS: %q, %v", line, err)
	}
	if evs := k.WaitEvents("request", 1, 2*time.Second); len(evs) != 1 || evs[0].Fields["proto"] != "tls" {
		t.Fatalf("kamailio saw %v", evs)
	}
}
