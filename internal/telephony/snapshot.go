package telephony

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo/sip"
)

// A dialog snapshot is what a later process needs to end a call this one carries: enough of
// its SIP dialog (RFC 3261 §12) to send a BYE in it, and to recognise the caller's own BYE.
// Leg.Dialog gives it (the engine journals it with the session), Server.EndDialog takes it
// after a crash. It is JSON, versioned; its fields are named so that a journal stays readable.
type dialogSnapshot struct {
	Version int    `json:"v"`
	Dir     string `json:"dir"` // snapIncoming (ivrd is the UAS) or snapDialled (ivrd placed it)
	CallID  string `json:"call_id"`
	// Local is ivrd's end with its tag (the From of ivrd's requests), Remote the other end's
	// with its tag (their To): name-addr header values.
	Local  string `json:"local"`
	Remote string `json:"remote"`
	// Target is the remote target (the other end's Contact URI), Routes the route set in the
	// order ivrd's requests carry it (Route header values).
	Target string   `json:"target"`
	Routes []string `json:"routes,omitempty"`
	CSeq   uint32   `json:"cseq"` // ivrd's last CSeq in the dialog
	// Transport is the dialog's transport (UDP, TCP, TLS). Source is where the other end's
	// requests came from; ToSource says ivrd's requests go there rather than to Target (a
	// caller behind NAT over UDP, with no route set).
	Transport string `json:"transport"`
	Source    string `json:"source,omitempty"`
	ToSource  bool   `json:"to_source,omitempty"`
	Contact   string `json:"contact"` // ivrd's Contact URI in the dialog
	// Answered is false for an incoming call taken while it rang: its INVITE may still wait
	// for a final response, which Vias and InviteCSeq let a later process send.
	Answered   bool     `json:"answered"`
	Vias       []string `json:"vias,omitempty"`
	InviteCSeq uint32   `json:"invite_cseq,omitempty"`
}

const (
	snapshotVersion = 1
	snapIncoming    = "in"
	snapDialled     = "out"
)

// maxSnapshot bounds a snapshot's size (a hostile INVITE's headers make it big; the
// transport layer already limits a message to 64 KiB).
const maxSnapshot = 64 << 10

var errSnapshot = errors.New("telephony: dialog snapshot")

// Dialog describes the leg's SIP dialog as an opaque snapshot (ivr.DialogCall): given to
// Server.EndDialog in a later process, it ends the call with a BYE (and, for an incoming
// call still ringing, a final response to its INVITE). It is nil once the leg has ended, and
// for a leg whose dialog cannot be described (no To tag yet).
func (l *Leg) Dialog() []byte {
	l.mu.Lock()
	answered := l.state == stateAnswering || l.state == stateAnswered
	ended := l.state == stateEnded
	l.mu.Unlock()
	if ended {
		return nil
	}
	var snap *dialogSnapshot
	if l.inc != nil {
		snap = l.inc.snapshot(answered)
	} else if d, ok := l.dlg.(*diago.DialogClientSession); ok {
		snap = dialledSnapshot(d)
	}
	if snap == nil {
		return nil
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return nil
	}
	return b
}

// snapshot describes an incoming call's dialog: the INVITE (with ivrd's To tag) and where
// the caller is.
func (in *incoming) snapshot(answered bool) *dialogSnapshot {
	req := in.d.InviteRequest
	from, to, cid, cseq := req.From(), req.To(), req.CallID(), req.CSeq()
	if from == nil || to == nil || cid == nil || cseq == nil {
		return nil
	}
	in.mu.Lock()
	target := in.target.String()
	in.mu.Unlock()
	snap := &dialogSnapshot{Version: snapshotVersion, Dir: snapIncoming, CallID: cid.Value(),
		Local: to.Value(), Remote: from.Value(), Target: target, CSeq: in.d.CSEQ(),
		Transport: in.transport, Contact: in.contact.Address.String(), Answered: answered, InviteCSeq: cseq.SeqNo}
	for _, h := range req.GetHeaders(hdrRecordRoute) {
		snap.Routes = append(snap.Routes, h.Value()) // a UAS keeps the Record-Route order (§12.1.1)
	}
	if in.source.IsValid() {
		snap.Source = in.source.String()
		snap.ToSource = in.natSIP && !in.routed && !in.reliable
	}
	if !answered {
		for _, h := range req.GetHeaders("Via") {
			snap.Vias = append(snap.Vias, h.Value())
		}
	}
	return snap
}

// dialledSnapshot describes a dialled call's dialog: our INVITE and the far end's 2xx.
func dialledSnapshot(d *diago.DialogClientSession) *dialogSnapshot {
	req, res := d.InviteRequest, d.InviteResponse
	if req == nil || res == nil {
		return nil
	}
	from, to, cid := req.From(), res.To(), req.CallID()
	if from == nil || to == nil || cid == nil {
		return nil
	}
	target := req.Recipient.String()
	if c := res.Contact(); c != nil {
		target = c.Address.String()
	}
	contact := ""
	if c := req.Contact(); c != nil {
		contact = c.Address.String()
	}
	snap := &dialogSnapshot{Version: snapshotVersion, Dir: snapDialled, CallID: cid.Value(),
		Local: from.Value(), Remote: to.Value(), Target: target, CSeq: d.CSEQ(),
		Transport: strings.ToUpper(req.Transport()), Contact: contact, Answered: true}
	rrs := res.GetHeaders(hdrRecordRoute)
	for i := len(rrs) - 1; i >= 0; i-- { // a UAC reverses the 2xx's Record-Route (§12.1.2)
		snap.Routes = append(snap.Routes, rrs[i].Value())
	}
	return snap
}

// savedDialog is a snapshot read back: parsed, checked, ready to build requests from.
type savedDialog struct {
	snap             dialogSnapshot
	local, remote    sip.Uri
	localName        string
	remoteName       string
	localP, remoteP  sip.HeaderParams
	localTag, remTag string
	target, contact  sip.Uri
	routes           []sip.Uri
	vias             []sip.Header
	source           netip.AddrPort // valid when the snapshot names one
}

// parseSnapshot reads a snapshot Leg.Dialog wrote. It refuses one that could not address a
// request: unknown version or direction, a missing Call-ID or tag, an unparsable URI, an
// unknown transport.
func parseSnapshot(b []byte) (*savedDialog, error) {
	if len(b) > maxSnapshot {
		return nil, fmt.Errorf("%w: %d bytes", errSnapshot, len(b))
	}
	var s savedDialog
	if err := json.Unmarshal(b, &s.snap); err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	sn := &s.snap
	switch {
	case sn.Version != snapshotVersion:
		return nil, fmt.Errorf("%w: version %d", errSnapshot, sn.Version)
	case sn.Dir != snapIncoming && sn.Dir != snapDialled:
		return nil, fmt.Errorf("%w: direction %q", errSnapshot, sn.Dir)
	case sn.CallID == "" || strings.ContainsAny(sn.CallID, "\r\n"):
		return nil, fmt.Errorf("%w: Call-ID %q", errSnapshot, sn.CallID)
	case !slices.Contains([]string{"UDP", "TCP", "TLS"}, sn.Transport):
		return nil, fmt.Errorf("%w: transport %q", errSnapshot, sn.Transport)
	}
	var err error
	s.localP, s.remoteP = sip.NewParams(), sip.NewParams()
	if s.localName, err = parseNameAddr(sn.Local, &s.local, &s.localP); err != nil {
		return nil, fmt.Errorf("%w: local %q: %v", errSnapshot, sn.Local, err)
	}
	if s.remoteName, err = parseNameAddr(sn.Remote, &s.remote, &s.remoteP); err != nil {
		return nil, fmt.Errorf("%w: remote %q: %v", errSnapshot, sn.Remote, err)
	}
	s.localTag, _ = s.localP.Get("tag")
	s.remTag, _ = s.remoteP.Get("tag")
	if s.localTag == "" || s.remTag == "" {
		return nil, fmt.Errorf("%w: a tag is missing", errSnapshot)
	}
	if err := parseURI(sn.Target, &s.target); err != nil {
		return nil, fmt.Errorf("%w: target %q: %v", errSnapshot, sn.Target, err)
	}
	if sn.Contact != "" {
		if err := parseURI(sn.Contact, &s.contact); err != nil {
			return nil, fmt.Errorf("%w: contact %q: %v", errSnapshot, sn.Contact, err)
		}
	}
	for _, r := range sn.Routes {
		var u sip.Uri
		p := sip.NewParams()
		if _, err := parseNameAddr(r, &u, &p); err != nil {
			return nil, fmt.Errorf("%w: route %q: %v", errSnapshot, r, err)
		}
		s.routes = append(s.routes, u)
	}
	if sn.Source != "" {
		if s.source, err = netip.ParseAddrPort(sn.Source); err != nil {
			return nil, fmt.Errorf("%w: source %q", errSnapshot, sn.Source)
		}
	}
	hp := sip.HeadersParser(sip.DefaultHeadersParser())
	for _, v := range sn.Vias {
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("%w: Via %q", errSnapshot, v)
		}
		if s.vias, err = hp.ParseHeader(s.vias, []byte("Via: "+v)); err != nil {
			return nil, fmt.Errorf("%w: Via %q: %v", errSnapshot, v, err)
		}
	}
	return &s, nil
}

func parseNameAddr(v string, u *sip.Uri, p *sip.HeaderParams) (string, error) {
	if strings.ContainsAny(v, "\r\n") {
		return "", errors.New("line break")
	}
	name, err := sip.ParseAddressValue(v, u, p)
	if err == nil && u.Host == "" {
		err = errors.New("no host")
	}
	return name, err
}

func parseURI(v string, u *sip.Uri) error {
	if strings.ContainsAny(v, "\r\n<>") {
		return errors.New("bad characters")
	}
	if err := sip.ParseUri(v, u); err != nil {
		return err
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// key identifies the dialog in a request the other end sends in it: Call-ID, our tag (their
// To), theirs (their From).
func (s *savedDialog) key() dialogKey {
	return dialogKey{callID: s.snap.CallID, local: s.localTag, remote: s.remTag}
}

// dialogKey identifies a dialog from either end's requests.
type dialogKey struct{ callID, local, remote string }

// keyOfRequest is the dialogKey of a request received in a dialog.
func keyOfRequest(req *sip.Request) (dialogKey, bool) {
	cid, from, to := req.CallID(), req.From(), req.To()
	if cid == nil || from == nil || to == nil {
		return dialogKey{}, false
	}
	local, _ := to.Params.Get("tag")
	remote, _ := from.Params.Get("tag")
	if local == "" || remote == "" {
		return dialogKey{}, false
	}
	return dialogKey{callID: cid.Value(), local: local, remote: remote}, true
}

// bye builds the BYE that ends the dialog: From ivrd's end, To the other's, the next CSeq,
// the route set, to the remote target (or the source the other end's requests came from).
func (s *savedDialog) bye() *sip.Request {
	req := sip.NewRequest(sip.BYE, *s.target.Clone())
	req.SetTransport(s.snap.Transport)
	maxFwd := sip.MaxForwardsHeader(70)
	cid := sip.CallIDHeader(s.snap.CallID)
	req.AppendHeader(&sip.FromHeader{DisplayName: s.localName, Address: *s.local.Clone(), Params: s.localP.Clone()})
	req.AppendHeader(&sip.ToHeader{DisplayName: s.remoteName, Address: *s.remote.Clone(), Params: s.remoteP.Clone()})
	req.AppendHeader(&cid)
	// One more than the last CSeq journaled: a request sent after the snapshot (a BYE cut
	// short by the crash) leaves ours no lower than the far end has seen, never higher by much.
	req.AppendHeader(&sip.CSeqHeader{SeqNo: s.snap.CSeq + 1, MethodName: sip.BYE})
	req.AppendHeader(&maxFwd)
	for _, r := range s.snap.Routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	if s.snap.Contact != "" {
		req.AppendHeader(&sip.ContactHeader{Address: *s.contact.Clone()})
	}
	switch {
	case len(s.routes) > 0:
		if !s.routes[0].UriParams.Has("lr") { // a strict router: it takes the Request-URI
			req.Recipient = *s.routes[0].Clone()
		}
		req.SetDestination(s.routes[0].HostPort())
	case s.snap.ToSource && s.source.IsValid():
		req.SetDestination(s.source.String())
	}
	req.SetBody(nil)
	return req
}

// finalResponse is the final response (code) to the INVITE of an incoming call still
// ringing, nil when the snapshot cannot answer it (answered, or no Via kept).
func (s *savedDialog) finalResponse(code int) []byte {
	if s.snap.Dir != snapIncoming || s.snap.Answered || len(s.vias) == 0 || s.snap.InviteCSeq == 0 {
		return nil
	}
	res := sip.NewResponse(code, reasonPhrase(code))
	for _, v := range s.vias {
		res.AppendHeader(sip.HeaderClone(v))
	}
	cid := sip.CallIDHeader(s.snap.CallID)
	res.AppendHeader(&sip.FromHeader{DisplayName: s.remoteName, Address: *s.remote.Clone(), Params: s.remoteP.Clone()})
	res.AppendHeader(&sip.ToHeader{DisplayName: s.localName, Address: *s.local.Clone(), Params: s.localP.Clone()})
	res.AppendHeader(&cid)
	res.AppendHeader(&sip.CSeqHeader{SeqNo: s.snap.InviteCSeq, MethodName: sip.INVITE})
	res.SetBody(nil)
	return []byte(res.String())
}
