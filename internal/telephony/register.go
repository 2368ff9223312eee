package telephony

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// RegisterOptions describes the registration Server.Register keeps up.
type RegisterOptions struct {
	// Registrar is the trunk's SIP address, as DialOptions.Trunk: REGISTERs go there (by the
	// transport it names) and its host is the domain of the address of record user@host.
	Registrar string
	// Username is the registered user (and the user part of our Contact, so the trunk's
	// INVITEs carry it in their Request-URI); Username and Password answer the challenges.
	Username, Password string
	Expiry             time.Duration // asked for; default 10 min (the registrar may grant less)
}

// The registration's states, as logged ("trunk registration" state=...).
const (
	RegistrationRegistered = "registered" // the registrar accepted us; refreshed before it expires
	RegistrationFailed     = "failed"     // the last REGISTER failed; retried after a backoff
	RegistrationRetrying   = "retrying"   // the backoff is over: REGISTER again
)

const (
	defaultRegisterExpiry = 10 * time.Minute
	registerTimeout       = 10 * time.Second // one REGISTER, challenge included
	unregisterTimeout     = 2 * time.Second
	headerMinExpires      = "Min-Expires"
	headerRetryAfter      = "Retry-After"
)

// Backoff between failed REGISTERs: doubling from the first to the last.
var registerBackoff = [2]time.Duration{time.Second, 5 * time.Minute}

// Register keeps a registration with the trunk's registrar up until ctx ends: it registers,
// refreshes when three quarters of the granted time have passed, and after a failure (no
// response, a refusal, wrong credentials) retries with a doubling backoff (1 s to 5 min, or the
// registrar's Retry-After). Every state change is logged; the password never is. When ctx ends
// it unregisters (for a moment at most) and returns nil. It returns an error only for options
// it cannot use. Register needs Serve running.
func (s *Server) Register(ctx context.Context, o RegisterOptions) error {
	if !validUser(o.Username) {
		return fmt.Errorf("telephony: register: invalid user %q", o.Username)
	}
	registrar, err := dialURI(o.Registrar, o.Username)
	if err != nil {
		return fmt.Errorf("telephony: register: %w", err)
	}
	select {
	case <-s.ready:
	case <-s.stop:
		return errNotServing
	case <-ctx.Done():
		return nil
	}
	r, err := s.newRegistration(ctx, registrar, o)
	if err != nil {
		return err
	}
	r.loop(ctx)
	return nil
}

// registration is one address of record kept registered: its REGISTERs share Call-ID and From
// tag, with increasing CSeq.
type registration struct {
	log        *slog.Logger
	client     *sipgo.Client
	tlsContact func(context.Context) (*sip.ContactHeader, error) // over TLS without a listener: the Contact of each REGISTER
	uri        sip.Uri                                           // Request-URI: the registrar, without user
	aor        sip.Uri                                           // To and From
	contact    sip.ContactHeader
	user, pass string
	expiry     time.Duration // asked for
	callID     string
	fromTag    string
	cseq       uint32
	state      string
}

func (s *Server) newRegistration(ctx context.Context, registrar sip.Uri, o RegisterOptions) (*registration, error) {
	aor := sip.Uri{Scheme: registrar.Scheme, User: o.Username, Host: registrar.Host}
	registrar.User = ""
	// diago knows the Contact of each transport (its address, external address, transport):
	// its register transaction is only asked for that.
	rt, err := s.dg.RegisterTransaction(ctx, registrar, diago.RegisterOptions{})
	if err != nil {
		return nil, fmt.Errorf("telephony: register: %w", err)
	}
	contact := rt.Origin.Contact().Clone()
	contact.Address.User = o.Username
	opts := []sipgo.ClientOption{sipgo.WithClientNAT(), sipgo.WithClientLogger(s.log)}
	if tp, _ := registrar.UriParams.Get("transport"); registrar.Scheme != "sips" && (tp == "" || strings.EqualFold(tp, "udp")) {
		// From the SIP socket itself, so that the registrar's INVITEs come back to it.
		opts = append(opts, sipgo.WithClientConnectionAddr(s.Addr()))
	}
	if host, _, _ := net.SplitHostPort(s.Addr()); contact.Address.Host != host {
		opts = append(opts, sipgo.WithClientHostname(contact.Address.Host), sipgo.WithClientPort(contact.Address.Port))
	}
	client, err := sipgo.NewClient(s.ua, opts...)
	if err != nil {
		return nil, fmt.Errorf("telephony: register: %w", err)
	}
	expiry := o.Expiry
	if expiry <= 0 {
		expiry = defaultRegisterExpiry
	}
	var tlsContact func(context.Context) (*sip.ContactHeader, error)
	if isTLS(registrar) && s.ls.tls == nil {
		// Each REGISTER names the connection it goes on (opened again if it was closed).
		tlsContact = func(ctx context.Context) (*sip.ContactHeader, error) { return s.tlsContact(ctx, registrar, o.Username) }
	}
	return &registration{
		tlsContact: tlsContact,
		log:        s.log.With("registrar", o.Registrar, "user", o.Username),
		client:     client, uri: registrar, aor: aor, contact: *contact,
		user: o.Username, pass: o.Password, expiry: expiry,
		callID: sip.GenerateTagN(24), fromTag: sip.GenerateTagN(16),
	}, nil
}

// loop registers and refreshes until ctx ends, then unregisters.
func (r *registration) loop(ctx context.Context) {
	backoff := registerBackoff[0]
	for {
		granted, retryAfter, err := r.register(ctx, r.expiry)
		if ctx.Err() != nil {
			break
		}
		var wait time.Duration
		if err == nil {
			if r.state != RegistrationRegistered {
				r.log.Info("trunk registration", "state", RegistrationRegistered, "expires", granted)
			} else {
				r.log.Debug("trunk registration refreshed", "expires", granted)
			}
			r.state, backoff = RegistrationRegistered, registerBackoff[0]
			wait = granted * 3 / 4
		} else {
			wait = backoff
			if retryAfter > 0 {
				wait = min(retryAfter, registerBackoff[1])
			}
			backoff = min(2*backoff, registerBackoff[1])
			r.state = RegistrationFailed
			r.log.Warn("trunk registration", "state", RegistrationFailed, "err", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
		if r.state == RegistrationFailed {
			r.state = RegistrationRetrying
			r.log.Info("trunk registration", "state", RegistrationRetrying)
		}
	}
	if r.state == RegistrationRegistered {
		uctx, cancel := context.WithTimeout(context.Background(), unregisterTimeout)
		defer cancel()
		if _, _, err := r.register(uctx, 0); err != nil {
			r.log.Warn("trunk unregistration failed", "err", err)
		} else {
			r.log.Info("trunk unregistered")
		}
	}
}

// errRegister is a REGISTER refused by the registrar.
type errRegister struct {
	code   int
	reason string
}

func (e errRegister) Error() string { return fmt.Sprintf("registrar answered %d %s", e.code, e.reason) }

// register sends one REGISTER asking for expiry (0 unregisters), answering a challenge, and
// one more with the registrar's Min-Expires after a 423. It returns the time granted, and the
// registrar's Retry-After on a refusal.
func (r *registration) register(ctx context.Context, expiry time.Duration) (granted, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	for tooBrief := 0; ; tooBrief++ {
		res, err := r.send(ctx, expiry)
		if err != nil {
			return 0, 0, err
		}
		switch {
		case res.StatusCode == sip.StatusIntervalToBrief && tooBrief == 0 && expiry > 0:
			if h := res.GetHeader(headerMinExpires); h != nil {
				if d, ok := deltaSeconds(h.Value()); ok && d > 0 {
					expiry = d
					r.expiry = expiry
					continue
				}
			}
		case res.IsSuccess():
			if expiry == 0 {
				return 0, 0, nil
			}
			if granted = grantedExpiry(res, r.contact.Address, expiry); granted <= 0 {
				return 0, 0, errors.New("registrar granted no time")
			}
			return granted, 0, nil
		}
		if h := res.GetHeader(headerRetryAfter); h != nil {
			v, _, _ := strings.Cut(h.Value(), ";") // a comment or parameters may follow
			if d, ok := deltaSeconds(v); ok {
				retryAfter = d
			}
		}
		return 0, retryAfter, errRegister{res.StatusCode, res.Reason}
	}
}

// send sends one REGISTER and answers a 401/407 challenge with the credentials.
func (r *registration) send(ctx context.Context, expiry time.Duration) (*sip.Response, error) {
	req := sip.NewRequest(sip.REGISTER, r.uri)
	from := &sip.FromHeader{Address: r.aor, Params: sip.NewParams()}
	from.Params.Add("tag", r.fromTag)
	to := &sip.ToHeader{Address: r.aor, Params: sip.NewParams()}
	callID := sip.CallIDHeader(r.callID)
	r.cseq++
	exp := sip.ExpiresHeader(uint32(expiry / time.Second))
	if r.tlsContact != nil {
		c, err := r.tlsContact(ctx)
		if err != nil {
			return nil, err
		}
		r.contact = *c
	}
	contact := r.contact.Clone()
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(contact)
	req.AppendHeader(&exp)
	res, err := r.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("no response from the registrar: %w", err)
	}
	if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
		if r.pass == "" {
			return res, nil
		}
		res, err = r.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: r.user, Password: r.pass})
		if cs := req.CSeq(); cs != nil {
			r.cseq = cs.SeqNo
		}
		if err != nil {
			return nil, fmt.Errorf("no response from the registrar to our credentials: %w", err)
		}
	}
	return res, nil
}

// grantedExpiry is the registration time a 200 OK to REGISTER grants our contact: its expires
// parameter in the response's Contact list, else the Expires header, else what we asked.
func grantedExpiry(res *sip.Response, ours sip.Uri, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		for _, c := range splitContacts(h.Value()) {
			var uri sip.Uri
			params := sip.NewParams()
			if _, err := sip.ParseAddressValue(c, &uri, &params); err != nil || !sameContact(uri, ours) {
				continue
			}
			if v, ok := params.Get("expires"); ok {
				if d, ok := deltaSeconds(v); ok {
					return d
				}
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if d, ok := deltaSeconds(h.Value()); ok {
			return d
		}
	}
	return asked
}

// deltaSeconds parses a SIP delta-seconds value (RFC 3261: up to 2^32-1; larger ones mean
// that much).
func deltaSeconds(v string) (time.Duration, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(min(n, 1<<32-1)) * time.Second, true
}

// sameContact compares the user, host and port of two contact URIs.
func sameContact(a, b sip.Uri) bool {
	return a.User == b.User && strings.EqualFold(a.Host, b.Host) && a.Port == b.Port
}
