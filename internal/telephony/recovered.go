package telephony

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Calls a crashed process was carrying are ended by the next one (ivr.DialogEnder): for each
// dialog snapshot recovery hands over, EndDialog remembers the dialog and, once Serve has the
// sockets going, sends its BYE (an incoming call that was still ringing first gets a final
// response to its INVITE, over UDP). Until recoveredKeep after that BYE is done, a request the
// other end sends in the dialog (its own BYE, crossing ours or the restart) is answered 200
// instead of 481: the call is over either way.
//
// Where the BYE goes: along the route set when a proxy recorded one; else, for a caller behind
// NAT over UDP, to the address its requests came from (ivrd's UDP socket is the one it used,
// so the NAT binding, if it is still open, lets the BYE in); else to the remote target (the
// Contact). Over TCP and TLS the connection the call used died with the process: the BYE opens
// a new one to the remote target, which reaches a party that listens there (a trunk, a proxy,
// a phone with a reachable Contact) but not a phone behind NAT.

// recoveredKeep is how long an ended dialog is still recognised after our BYE is done: 64*T1,
// as long as the other end retransmits a BYE of its own.
var recoveredKeep = 64 * sip.T1

// recoveredByeTimeout bounds one recovered BYE (its transaction gives up after 64*T1 anyway).
const recoveredByeTimeout = 40 * time.Second

// recoveredFinalStatus answers the INVITE of a call that was ringing when the process died.
const recoveredFinalStatus = sip.StatusInternalServerError

// recovered holds the dialogs EndDialog was given.
type recovered struct {
	mu      sync.Mutex
	dialogs map[dialogKey]*savedDialog
	pending []*savedDialog // to end once serving
	started bool           // serving: EndDialog sends at once
	wg      sync.WaitGroup // BYEs in flight
}

// EndDialog ends, from this process, a call a crashed one was carrying, described by the
// snapshot its Leg.Dialog gave. It returns at once (an error only for a snapshot it cannot
// read); the BYE goes out once Serve runs, and its outcome is logged. It may be called before
// Serve (crash recovery runs before the server takes calls).
func (s *Server) EndDialog(snapshot []byte) error {
	d, err := parseSnapshot(snapshot)
	if err != nil {
		return err
	}
	r := &s.recovered
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dialogs == nil {
		r.dialogs = map[dialogKey]*savedDialog{}
	}
	if _, dup := r.dialogs[d.key()]; dup {
		return nil
	}
	r.dialogs[d.key()] = d
	if !r.started {
		r.pending = append(r.pending, d)
		return nil
	}
	r.wg.Add(1)
	go s.endRecovered(d)
	return nil
}

// startRecovered sends the BYEs EndDialog queued before Serve; called once sipgo serves the
// sockets.
func (s *Server) startRecovered() {
	r := &s.recovered
	r.mu.Lock()
	r.started = true
	pending := r.pending
	r.pending = nil
	r.wg.Add(len(pending))
	r.mu.Unlock()
	for _, d := range pending {
		go s.endRecovered(d)
	}
}

// endRecovered ends one recovered dialog and forgets it recoveredKeep later.
func (s *Server) endRecovered(d *savedDialog) {
	defer s.recovered.wg.Done()
	log := s.log.With("call_id", d.snap.CallID, "dir", d.snap.Dir, "transport", d.snap.Transport)
	if res := d.finalResponse(recoveredFinalStatus); res != nil && d.snap.Transport == "UDP" && d.source.IsValid() {
		// The INVITE may still wait for its final response (the caller would ring on): send
		// it from the SIP socket, statelessly. The 200 may have gone out before the crash:
		// the BYE below covers that (a caller that never got it answers 481).
		if _, err := s.conn.WriteTo(res, net.UDPAddrFromAddrPort(d.source)); err != nil {
			log.Warn("recovered call: final response to its INVITE", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), recoveredByeTimeout)
	defer cancel()
	code, err := s.sendRecoveredBye(ctx, d)
	switch {
	case err != nil:
		log.Warn("recovered call: BYE not answered", "err", err)
	case code == sip.StatusOK:
		log.Info("recovered call ended (BYE answered 200)")
	default: // 481: the other end had ended it already
		log.Info("recovered call: BYE answered", "status", code)
	}
	time.AfterFunc(recoveredKeep, func() {
		s.recovered.mu.Lock()
		delete(s.recovered.dialogs, d.key())
		s.recovered.mu.Unlock()
	})
}

// sendRecoveredBye sends d's BYE and returns the final status it got.
func (s *Server) sendRecoveredBye(ctx context.Context, d *savedDialog) (int, error) {
	client, err := s.clientFor(d.snap.Transport)
	if err != nil {
		return 0, err
	}
	tx, err := client.TransactionRequest(ctx, d.bye(), sipgo.ClientRequestAddVia)
	if err != nil {
		return 0, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res.StatusCode, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return 0, err
			}
			return 0, errors.New("transaction ended without a response")
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.stop:
			return 0, errNotServing
		}
	}
}

// answerRecovered answers 200 OK to a request in a dialog recovery ended (the other end's BYE,
// or anything else it still sends there), and reports whether req was one.
func (s *Server) answerRecovered(req *sip.Request, tx sip.ServerTransaction) bool {
	key, ok := keyOfRequest(req)
	if !ok {
		return false
	}
	s.recovered.mu.Lock()
	_, found := s.recovered.dialogs[key]
	s.recovered.mu.Unlock()
	if !found {
		return false
	}
	if req.Method == sip.ACK {
		return true // an ACK gets no response
	}
	if err := tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)); err != nil {
		s.log.Debug("answering a recovered call's request", "method", req.Method.String(), "err", err)
	} else {
		s.log.Info("recovered call: request from the other end answered 200", "call_id", key.callID, "method", req.Method.String())
	}
	return true
}

// clientFor returns the client ivrd's own requests of transport ("UDP", "TCP", "TLS") are sent
// with: Via and the source address are the SIP listener of that transport (UDP from its very
// socket, so that a NAT binding toward it still applies).
func (s *Server) clientFor(transport string) (*sipgo.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[transport]; c != nil {
		return c, nil
	}
	contact := s.contactFor(transport)
	opts := []sipgo.ClientOption{sipgo.WithClientNAT(), sipgo.WithClientLogger(s.log),
		sipgo.WithClientHostname(contact.Address.Host), sipgo.WithClientPort(contact.Address.Port)}
	if transport == "UDP" {
		if ip, _ := hostPort(s.conn.LocalAddr()); ip.IsValid() && !ip.IsUnspecified() {
			opts = append(opts, sipgo.WithClientConnectionAddr(s.Addr()))
		}
	}
	c, err := sipgo.NewClient(s.ua, opts...)
	if err != nil {
		return nil, fmt.Errorf("telephony: client: %w", err)
	}
	if s.clients == nil {
		s.clients = map[string]*sipgo.Client{}
	}
	s.clients[transport] = c
	return c, nil
}
