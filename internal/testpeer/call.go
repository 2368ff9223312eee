// Package testpeer places and takes real SIP calls with sipp (Debian package sip-tester) for
// tests across ivrd: a Call runs one sipp UAC, an Answerer one sipp UAS (the far end of an
// outgoing call), both with media on 127.0.0.1; they send scripted audio and DTMF and report
// how the call went and what they heard.
package testpeer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Call describes one call placed by sipp.
type Call struct {
	Target      string        // SIP server, "127.0.0.1:5060"
	Number      string        // Request-URI and To user, e.g. "6500000001"
	From        string        // From user; default "sipp"
	Script      []Step        // run after the ACK, in order
	HangupAfter time.Duration // send BYE this long after the ACK (cutting the script); 0 = wait for the server's BYE
	CancelAfter time.Duration // if set, send CANCEL this long after 180 Ringing (Status then 487)
	Timeout     time.Duration // whole call, ringing included; default 30 s
	PCMA        bool          // offer PCMA (A-law) instead of PCMU
	Transport   string        // "udp" (default) or "tcp" (one connection for the call)
	// KeepOnClose (TCP) keeps the call when the server closes the connection (it crashed):
	// sipp then still takes the server's requests on a new connection to its Contact, but
	// writes its responses to the dead one and exits (sipp -reconnect_close false). A run that
	// ends so after a BYE from the server is not an error: ByeFromServer says it came.
	KeepOnClose bool
	// OnMedia, if set, is called (from another goroutine) with the address the first RTP
	// packet from the server came from: the server's RTP socket for this call.
	OnMedia func(from netip.AddrPort)
}

// Result is how the call went (for a Call or an Answerer).
type Result struct {
	Answered      bool        // the INVITE got 200 OK
	ByeFromServer bool        // the server sent BYE (sipp answered it 200 OK)
	Status        int         // final status of the INVITE (200 when answered)
	AnsweredAt    time.Time   // when sipp got the 200 OK (from its trace, microseconds)
	ByeAt         time.Time   // when sipp sent or got the BYE (from its trace)
	Stderr        string      // sipp's stderr
	Trace         string      // sipp's SIP message trace, for failure messages
	Heard         []int16     // what the caller received, decoded, laid out by RTP timestamp
	HeardAt       time.Time   // arrival of the first packet of Heard
	Packets       int         // audio RTP packets received
	Events        int         // non-audio RTP packets received (e.g. telephone-event)
	Arrivals      []time.Time // when each audio packet arrived

	// Answerer only: what the INVITE carried, and whether the caller cancelled it.
	RequestUser  string // the Request-URI's user part, e.g. "+6590000001"
	FromUser     string // the From URI's user part
	AssertedUser string // the P-Asserted-Identity URI's user part ("" without one)
	Cancelled    bool   // a CANCEL arrived
}

// Sipp is the sipp binary.
var Sipp = "sipp"

// Available reports whether sipp can be run (tests skip without it).
func Available() bool {
	_, err := exec.LookPath(Sipp)
	return err == nil
}

// Run places the call and returns when sipp has exited. It returns an error when sipp could
// not run, timed out, failed in a way the trace does not explain, or the INVITE got no final
// response; Result is filled as far as known in every case.
func (c Call) Run(ctx context.Context) (Result, error) {
	if !safeUser(c.Number) || (c.From != "" && !safeUser(c.From)) {
		return Result{}, fmt.Errorf("testpeer: number %q or from %q has characters we do not put in SIP", c.Number, c.From)
	}
	return uac{target: c.Target, transport: c.Transport, keepOnClose: c.KeepOnClose, timeout: c.Timeout, onMedia: c.OnMedia, scenario: c.scenario}.run(ctx)
}

// uac is one sipp caller run: its scenario is written for the receiver's port.
type uac struct {
	target      string
	transport   string
	keepOnClose bool
	timeout     time.Duration
	onMedia     func(netip.AddrPort)
	scenario    func(scenarioParams) (string, error)
}

func (u uac) run(ctx context.Context) (Result, error) {
	var res Result
	host, port, err := net.SplitHostPort(u.target)
	if err != nil {
		return res, fmt.Errorf("testpeer: target: %w", err)
	}
	transport := "u1"
	switch u.transport {
	case "", "udp":
	case "tcp":
		transport = "t1"
	default:
		return res, fmt.Errorf("testpeer: transport %q (udp or tcp)", u.transport)
	}
	timeout := u.timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// sipp gets the timeout itself (so it exits cleanly and flushes its trace); the context
	// kill is the backstop.
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()

	dir, err := os.MkdirTemp("", "testpeer-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	rx, err := newReceiver(u.onMedia)
	if err != nil {
		return res, fmt.Errorf("testpeer: media socket: %w", err)
	}
	defer rx.stop()

	xml, err := u.scenario(scenarioParams{host: host, port: port, mediaPort: rx.port(), dir: dir})
	if err != nil {
		return res, err
	}
	scen := filepath.Join(dir, "call.xml")
	if err := os.WriteFile(scen, []byte(xml), 0o644); err != nil {
		return res, err
	}
	trace := filepath.Join(dir, "messages.log")
	var stdout, stderr bytes.Buffer
	var runErr error
	for attempt := 1; ; attempt++ {
		mp, err := FreeMediaPort()
		if err != nil {
			return res, err
		}
		sp, err := freeUDPPort()
		if err != nil {
			return res, err
		}
		args := []string{
			"-sf", scen, "-m", "1", "-nostdin", "-aa", "-t", transport,
			"-i", "127.0.0.1", "-p", strconv.Itoa(sp), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mp),
			"-trace_msg", "-message_file", trace,
			"-timeout", strconv.Itoa(int((timeout+time.Second-1)/time.Second)) + "s",
		}
		if u.keepOnClose && transport == "t1" {
			args = append(args, "-reconnect_close", "false")
		}
		args = append(args, u.target)
		cmd := exec.CommandContext(ctx, Sipp, args...)
		cmd.Dir = dir // sipp writes its logs next to the scenario
		stdout.Reset()
		stderr.Reset()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 2 * time.Second
		runErr = cmd.Run()
		// A port taken between our check and sipp's bind: sipp sent nothing yet, so try again.
		if !exitedWith(runErr, exitBindError) || attempt == bindAttempts || ctx.Err() != nil {
			break
		}
		os.Remove(trace)
	}

	rx.stop()
	res.Heard, res.HeardAt, res.Packets, res.Events, res.Arrivals = rx.heard()
	res.Stderr = stderr.String()
	if b, err := os.ReadFile(trace); err == nil {
		res.Trace = string(b)
	}
	o := readOutcome(parseTrace(res.Trace))
	res.Status, res.AnsweredAt, res.ByeFromServer, res.ByeAt = o.status, o.answeredAt, o.byeFromServer, o.byeAt
	res.Answered = res.Status >= 200 && res.Status < 300

	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("testpeer: sipp killed after %v: %w\n%s", timeout, ctx.Err(), tail(stdout.String()))
	case runErr != nil && !exitedWith(runErr, 1) && !(u.keepOnClose && res.ByeFromServer):
		// 1 means "a call failed": an unexpected BYE makes sipp count the call failed even
		// though all went well; the trace says what happened.
		return res, fmt.Errorf("testpeer: sipp: %w: %s\n%s", runErr, res.Stderr, tail(stdout.String()))
	case res.Status == 0:
		return res, fmt.Errorf("testpeer: no final response to INVITE (sipp: %v)\n%s", runErr, tail(stdout.String()))
	}
	return res, nil
}

func exitedWith(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// safeUser reports whether s can go verbatim into the scenario's SIP URIs.
func safeUser(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			strings.ContainsRune("+-_.!~*()%", c)
		if !ok {
			return false
		}
	}
	return true
}

// exitBindError is sipp's exit status when it cannot bind one of its sockets.
const exitBindError = 254

// bindAttempts is how many times a sipp that failed to bind its ports is started afresh.
const bindAttempts = 3

// FreeMediaPort returns an even UDP port p on 127.0.0.1 such that p to p+3 were free a moment
// ago: sipp's -mp binds p for audio and p+2 for video (RTCP takes the odd ones), so a port
// from freeUDPPort alone can make sipp fail with "Unable to bind video RTP socket".
func FreeMediaPort() (int, error) {
	for i := 0; i < 50; i++ {
		p, err := freeUDPPort()
		if err != nil {
			return 0, err
		}
		p &^= 1
		if p+3 > 65535 || p < 1024 {
			continue
		}
		ok := true
		var held []net.PacketConn
		for q := p; q <= p+3 && ok; q++ {
			c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, errors.New("testpeer: no four consecutive free UDP ports for sipp's media")
}

// freeUDPPort returns a UDP port free on 127.0.0.1 a moment ago, for sipp to bind itself.
// Trap: without -p sipp takes 5060 when it is free (so a server started later on 5060
// fails), and without -mp it binds 6000, which collides between parallel runs.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func tail(s string) string {
	const n = 2000
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// PerSecond counts the audio packets that arrived in each whole second from from on, up to
// to (a last partial second is left out).
func (r Result) PerSecond(from, to time.Time) []int {
	var counts []int
	for w := from; !w.Add(time.Second).After(to); w = w.Add(time.Second) {
		n := 0
		for _, a := range r.Arrivals {
			if !a.Before(w) && a.Before(w.Add(time.Second)) {
				n++
			}
		}
		counts = append(counts, n)
	}
	return counts
}
