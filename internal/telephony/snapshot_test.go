package telephony

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// snapJSON is a valid snapshot of an incoming call, changed by edit.
func snapJSON(edit func(s *dialogSnapshot)) []byte {
	s := dialogSnapshot{Version: snapshotVersion, Dir: snapIncoming, CallID: "c1@host",
		Local:  `<sip:+6561234567@10.0.0.1:5060>;tag=ours`,
		Remote: `"Alice" <sip:6511111111@192.0.2.7:5062>;tag=theirs`,
		Target: "sip:alice@192.0.2.7:5062;transport=udp", CSeq: 7, Transport: "UDP",
		Source: "198.51.100.9:40000", Contact: "sip:ivrd@10.0.0.1:5060", Answered: true}
	if edit != nil {
		edit(&s)
	}
	b, _ := json.Marshal(s)
	return b
}

func TestParseSnapshot(t *testing.T) {
	bad := []struct {
		name string
		b    []byte
	}{
		{"not JSON", []byte("{")},
		{"version", snapJSON(func(s *dialogSnapshot) { s.Version = 2 })},
		{"direction", snapJSON(func(s *dialogSnapshot) { s.Dir = "sideways" })},
		{"no Call-ID", snapJSON(func(s *dialogSnapshot) { s.CallID = "" })},
		{"Call-ID with a line break", snapJSON(func(s *dialogSnapshot) { s.CallID = "a\r\nVia: x" })},
		{"transport", snapJSON(func(s *dialogSnapshot) { s.Transport = "SCTP" })},
		{"no local tag", snapJSON(func(s *dialogSnapshot) { s.Local = "<sip:a@b>" })},
		{"no remote tag", snapJSON(func(s *dialogSnapshot) { s.Remote = "<sip:a@b>" })},
		{"remote without host", snapJSON(func(s *dialogSnapshot) { s.Remote = "<sip:>;tag=x" })},
		{"target", snapJSON(func(s *dialogSnapshot) { s.Target = "not a uri" })},
		{"target with brackets", snapJSON(func(s *dialogSnapshot) { s.Target = "<sip:a@b>" })},
		{"route", snapJSON(func(s *dialogSnapshot) { s.Routes = []string{"<>"} })},
		{"source", snapJSON(func(s *dialogSnapshot) { s.Source = "nowhere" })},
		{"Via with a line break", snapJSON(func(s *dialogSnapshot) { s.Vias = []string{"SIP/2.0/UDP a\r\nX: y"} })},
		{"too big", append(snapJSON(nil), make([]byte, maxSnapshot)...)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseSnapshot(tc.b); !errors.Is(err, errSnapshot) {
				t.Fatalf("parseSnapshot = %v, want errSnapshot", err)
			}
		})
	}
	d, err := parseSnapshot(snapJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.key() != (dialogKey{callID: "c1@host", local: "ours", remote: "theirs"}) {
		t.Fatalf("key %+v", d.key())
	}
}

// TestSnapshotBye: the BYE built from a snapshot is in the dialog (From our end, To theirs,
// the next CSeq) and goes where RFC 3261 §12.2.1.1 (and NAT) say.
func TestSnapshotBye(t *testing.T) {
	cases := []struct {
		name      string
		edit      func(s *dialogSnapshot)
		ruri      string
		dest      string // "" : the Request-URI's
		routes    []string
		transport string
	}{
		{"to the remote target", nil, "sip:alice@192.0.2.7:5062;transport=udp", "", nil, "UDP"},
		{"to the source behind NAT", func(s *dialogSnapshot) { s.ToSource = true }, "sip:alice@192.0.2.7:5062;transport=udp", "198.51.100.9:40000", nil, "UDP"},
		{"along the route set", func(s *dialogSnapshot) {
			s.ToSource = true
			s.Routes = []string{"<sip:203.0.113.1:5070;lr>", "<sip:203.0.113.2;lr>"}
		}, "sip:alice@192.0.2.7:5062;transport=udp", "203.0.113.1:5070", []string{"<sip:203.0.113.1:5070;lr>", "<sip:203.0.113.2;lr>"}, "UDP"},
		{"a strict router takes the Request-URI", func(s *dialogSnapshot) { s.Routes = []string{"<sip:203.0.113.1:5070>"} },
			"sip:203.0.113.1:5070", "203.0.113.1:5070", []string{"<sip:203.0.113.1:5070>"}, "UDP"},
		{"over TCP to the Contact", func(s *dialogSnapshot) {
			s.Transport, s.Target = "TCP", "sip:alice@192.0.2.7:5062;transport=tcp"
		}, "sip:alice@192.0.2.7:5062;transport=tcp", "", nil, "TCP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseSnapshot(snapJSON(tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			bye := d.bye()
			if bye.Method != sip.BYE || bye.Recipient.String() != tc.ruri || bye.Transport() != tc.transport {
				t.Fatalf("%s %s over %s", bye.Method, bye.Recipient.String(), bye.Transport())
			}
			dest := tc.dest
			if dest == "" {
				dest = "192.0.2.7:5062"
			}
			if bye.Destination() != dest {
				t.Errorf("destination %s, want %s", bye.Destination(), dest)
			}
			from, to := bye.From(), bye.To()
			if tag, _ := from.Params.Get("tag"); tag != "ours" || from.Address.User != "+6561234567" {
				t.Errorf("From %s", from.Value())
			}
			if tag, _ := to.Params.Get("tag"); tag != "theirs" || to.DisplayName != "Alice" {
				t.Errorf("To %s", to.Value())
			}
			if bye.CallID().Value() != "c1@host" || bye.CSeq().SeqNo != 8 || bye.CSeq().MethodName != sip.BYE {
				t.Errorf("Call-ID %s CSeq %s", bye.CallID().Value(), bye.CSeq().Value())
			}
			var routes []string
			for _, h := range bye.GetHeaders("Route") {
				routes = append(routes, h.Value())
			}
			if strings.Join(routes, ",") != strings.Join(tc.routes, ",") {
				t.Errorf("routes %v, want %v", routes, tc.routes)
			}
			if c := bye.Contact(); c == nil || c.Address.String() != "sip:ivrd@10.0.0.1:5060" {
				t.Errorf("Contact %v", c)
			}
		})
	}
}

// TestSnapshotFinalResponse: a ringing call's snapshot answers its INVITE (a well-formed
// response, as the caller's transaction expects); an answered or dialled call's does not.
func TestSnapshotFinalResponse(t *testing.T) {
	ringing := func(s *dialogSnapshot) {
		s.Answered, s.InviteCSeq = false, 3
		s.Vias = []string{"SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK-1;rport=40000;received=198.51.100.9", "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK-0"}
	}
	d, _ := parseSnapshot(snapJSON(ringing))
	raw := d.finalResponse(500)
	msg, err := sip.ParseMessage(raw)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	res, ok := msg.(*sip.Response)
	if !ok || res.StatusCode != 500 || len(res.GetHeaders("Via")) != 2 || res.CSeq().SeqNo != 3 || res.CSeq().MethodName != sip.INVITE {
		t.Fatalf("%s", raw)
	}
	if tag, _ := res.To().Params.Get("tag"); tag != "ours" {
		t.Fatalf("To %s", res.To().Value())
	}
	for _, edit := range []func(*dialogSnapshot){nil, func(s *dialogSnapshot) { ringing(s); s.Dir = snapDialled }, func(s *dialogSnapshot) { ringing(s); s.Vias = nil }} {
		if d, _ := parseSnapshot(snapJSON(edit)); d.finalResponse(500) != nil {
			t.Error("a final response from a snapshot that cannot have one")
		}
	}
}

func FuzzParseSnapshot(f *testing.F) {
	f.Add(snapJSON(nil))
	f.Add(snapJSON(func(s *dialogSnapshot) {
		s.Routes = []string{"<sip:203.0.113.1:5070;lr>"}
		s.Answered, s.Vias, s.InviteCSeq = false, []string{"SIP/2.0/UDP a;branch=z9hG4bK-1"}, 1
	}))
	f.Add([]byte(`{"v":1,"dir":"out"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseSnapshot(b)
		if err != nil {
			return
		}
		// Whatever parses builds a request and (if it may) a response that parse back.
		bye := d.bye()
		if _, err := sip.ParseMessage([]byte(bye.String())); err != nil {
			t.Fatalf("BYE from %s does not parse: %v\n%s", b, err, bye)
		}
		if raw := d.finalResponse(500); raw != nil {
			if _, err := sip.ParseMessage(raw); err != nil {
				t.Fatalf("final response from %s does not parse: %v\n%s", b, err, raw)
			}
		}
	})
}
