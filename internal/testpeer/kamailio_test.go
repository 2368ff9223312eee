package testpeer

import (
	"context"
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
