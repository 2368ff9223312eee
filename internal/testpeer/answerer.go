package testpeer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Answerer is the far end of an outgoing call: sipp as a UAS on 127.0.0.1 (a stand-in for a
// SIP trunk and the phone behind it). It takes one call, answers it according to Mode, and
// records what it heard, like Call does.
type Answerer struct {
	Mode        string        // ModeAnswer (default), ModeBusy (486), ModeNoAnswer (180 forever), ModeDecline (603), ModeRedirect (302)
	Script      []Step        // ModeAnswer: run after the ACK, in order
	EarlyMedia  []Step        // ModeAnswer: if set, 183 Session Progress with SDP instead of 180, these steps (audio and pauses), then the 200
	RedirectTo  string        // ModeRedirect: the Contact of the 302, a SIP URI
	HangupAfter time.Duration // ModeAnswer: send BYE this long after the ACK (cutting the script); 0 = wait for the caller's BYE
	PCMA        bool          // answer PCMA (A-law) instead of PCMU
	Timeout     time.Duration // how long sipp runs at most, the wait for the INVITE included; default 30 s
}

// Start runs sipp and returns once it listens: addr is its SIP address ("127.0.0.1:port", the
// trunk to dial). wait blocks until sipp has exited (after one call, Timeout, or ctx ending)
// and reports the call; it may be called more than once. In Result, Answered and Status say
// what the answerer replied, ByeFromServer that the caller sent BYE, and RequestUser, FromUser
// AssertedUser
// and Cancelled what it received.
func (a Answerer) Start(ctx context.Context) (addr string, wait func() (Result, error), err error) {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dir, err := os.MkdirTemp("", "testpeer-uas-")
	if err != nil {
		return "", nil, err
	}
	cleanup := []func(){func() { os.RemoveAll(dir) }}
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	rx, err := newReceiver(nil)
	if err != nil {
		return "", nil, fmt.Errorf("testpeer: media socket: %w", err)
	}
	cleanup = append(cleanup, rx.stop)
	xml, err := a.scenario(uasParams{mediaPort: rx.port(), dir: dir})
	if err != nil {
		return "", nil, err
	}
	scen := filepath.Join(dir, "uas.xml")
	if err := os.WriteFile(scen, []byte(xml), 0o644); err != nil {
		return "", nil, err
	}
	trace := filepath.Join(dir, "messages.log")
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	cleanup = append(cleanup, cancel)
	var stdout, stderr bytes.Buffer
	var runErr error
	var exited chan struct{}
	var sp int
	for attempt := 1; ; attempt++ {
		var mp int
		if sp, err = freeUDPPort(); err != nil {
			return "", nil, err
		}
		if mp, err = FreeMediaPort(); err != nil {
			return "", nil, err
		}
		cmd := exec.CommandContext(ctx, Sipp,
			"-sf", scen, "-m", "1", "-nostdin", "-aa",
			"-i", "127.0.0.1", "-p", strconv.Itoa(sp), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mp),
			"-trace_msg", "-message_file", trace,
			"-timeout", strconv.Itoa(int((timeout+time.Second-1)/time.Second))+"s",
		)
		cmd.Dir = dir
		stdout.Reset()
		stderr.Reset()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 2 * time.Second
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("testpeer: sipp: %w", err)
		}
		exited = make(chan struct{})
		go func(done chan struct{}) {
			runErr = cmd.Wait()
			close(done)
		}(exited)
		// sipp binds its SIP socket, then its media sockets (audio, then video at mp+2): once
		// the last is bound it is ready.
		err := WaitListening(sp, exited, 5*time.Second)
		if err == nil {
			err = WaitListening(mp+2, exited, 5*time.Second)
		}
		if err == nil {
			break
		}
		select {
		case <-exited:
		default:
			cancel()
			<-exited
		}
		if !exitedWith(runErr, exitBindError) || attempt == bindAttempts || ctx.Err() != nil {
			cancel()
			return "", nil, fmt.Errorf("%w: %s\n%s", err, stderr.String(), tail(stdout.String()))
		}
		os.Remove(trace)
	}

	wait = sync.OnceValues(func() (Result, error) {
		<-exited
		var res Result
		rx.stop()
		res.Heard, res.HeardAt, res.Packets, res.Events, res.Arrivals = rx.heard()
		res.Stderr = stderr.String()
		if b, err := os.ReadFile(trace); err == nil {
			res.Trace = string(b)
		}
		os.RemoveAll(dir)
		o := readUASOutcome(parseTrace(res.Trace))
		res.Status, res.AnsweredAt, res.ByeFromServer, res.ByeAt = o.status, o.answeredAt, o.byeFromServer, o.byeAt
		res.Answered = res.Status >= 200 && res.Status < 300
		res.Cancelled = o.cancelled
		inv := inviteParties(res.Trace)
		res.RequestUser, res.FromUser, res.AssertedUser = inv.requestUser, inv.fromUser, inv.assertedUser
		killed := ctx.Err() != nil
		cancel()
		switch {
		case killed:
			return res, fmt.Errorf("testpeer: answerer killed after %v: %w\n%s", timeout, ctx.Err(), tail(stdout.String()))
		case runErr != nil && !exitedWith(runErr, 1):
			return res, fmt.Errorf("testpeer: answerer sipp: %w: %s\n%s", runErr, res.Stderr, tail(stdout.String()))
		case res.RequestUser == "":
			return res, fmt.Errorf("testpeer: answerer got no INVITE (sipp: %v)\n%s", runErr, tail(stdout.String()))
		}
		return res, nil
	})
	return "127.0.0.1:" + strconv.Itoa(sp), wait, nil
}

var errNotListening = errors.New("testpeer: the peer did not start listening")

// WaitListening waits until a UDP socket is bound to 127.0.0.1:port (per /proc/net/udp), or
// the process exits, or d passes. Without /proc it waits a moment and hopes.
func WaitListening(port int, exited <-chan struct{}, d time.Duration) error {
	want := fmt.Sprintf("0100007F:%04X", port)
	return waitFor(func() (bool, error) { return udpBound(want) }, exited, d)
}

// waitTCPListening waits until addr accepts TCP connections, or the process exits, or d passes.
func waitTCPListening(addr string, exited <-chan struct{}, d time.Duration) error {
	return waitFor(func() (bool, error) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil, nil
	}, exited, d)
}

// waitFor polls listening until it says yes, the process exits, or d passes. When listening
// cannot tell (an error), it waits a moment and hopes.
func waitFor(listening func() (bool, error), exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		found, err := listening()
		if err != nil {
			time.Sleep(300 * time.Millisecond)
			return nil
		}
		if found {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%w: it exited", errNotListening)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %v", errNotListening, d)
		}
	}
}

// udpBound reports whether /proc/net/udp lists a socket whose local address is want (in its
// hex form, e.g. "0100007F:1F90").
func udpBound(want string) (bool, error) {
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && fields[1] == want {
			return true, nil
		}
	}
	return false, sc.Err()
}
