package telephony

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestDrain: a drain whose context ends returns at once with the call still up; while the
// server drains, a new caller gets 503 with Retry-After (and so does a proxy's OPTIONS probe,
// answered 200 before) and the call up goes on; a drain returns as soon as that call ends.
func TestDrain(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(l *Leg) {
		ctx, cancel, _ := answerFor(l, 10*time.Second)
		defer cancel()
		select {
		case <-l.Done():
		case <-ctx.Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	live := make(chan testpeer.Result, 1)
	go func() {
		res, _ := testpeer.Call{Target: s.Addr(), Number: "100", HangupAfter: 2500 * time.Millisecond, Timeout: 10 * time.Second}.Run(ctx)
		live <- res
	}()
	if code, _ := probe(t, s.Addr()); code != 200 {
		t.Fatalf("OPTIONS before the drain: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Calls() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	cut, stop := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, stop)
	start := time.Now()
	if n := s.Drain(cut, time.Minute); n != 1 || time.Since(start) > time.Second {
		t.Fatalf("Drain cut short: %d calls left after %v", n, time.Since(start))
	}

	left := make(chan int, 1)
	start = time.Now()
	go func() { left <- s.Drain(context.Background(), 8*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	res, err := testpeer.Call{Target: s.Addr(), Number: "100", Timeout: 5 * time.Second}.Run(ctx)
	if err != nil && res.Status == 0 {
		t.Fatal(err)
	}
	var retry string
	for _, m := range testpeer.Messages(res.Trace) {
		if m.Status == 503 {
			retry, _ = m.Header(hdrRetryAfter)
		}
	}
	if res.Status != 503 || (retry != "8" && retry != "7") {
		t.Fatalf("new call while draining: %d, Retry-After %q\n%s", res.Status, retry, res.Trace)
	}
	if code, res := probe(t, s.Addr()); code != 503 || !strings.Contains(res, hdrRetryAfter+":") {
		t.Fatalf("OPTIONS while draining: %d\n%s", code, res)
	}
	if n := <-left; n != 0 || time.Since(start) > 4*time.Second {
		t.Fatalf("Drain returned %d calls left after %v", n, time.Since(start))
	}
	if r := <-live; !r.Answered || r.ByeFromServer {
		t.Fatalf("the live call: answered %v, BYE from the server %v", r.Answered, r.ByeFromServer)
	}
}

// probe sends addr an OPTIONS over UDP, as a proxy's dispatcher does, and returns the
// response's status code and text.
func probe(t *testing.T, addr string) (int, string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	fmt.Fprintf(c, "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-probe-%d\r\n"+
		"From: <sip:probe@%s>;tag=p1\r\nTo: <sip:%s>\r\nCall-ID: probe-%d@test\r\nCSeq: 1 OPTIONS\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", addr, local, time.Now().UnixNano(), local, addr, time.Now().UnixNano())
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("OPTIONS to %s: %v", addr, err)
	}
	res := string(buf[:n])
	f := strings.Fields(res)
	if len(f) < 2 {
		t.Fatalf("OPTIONS response %q", res)
	}
	code, _ := strconv.Atoi(f[1])
	return code, res
}
