package telephony

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// Trunk tests run against a real provider: Kamailio as registrar and proxy with digest
// authentication (testpeer.Kamailio), and sipp phones behind it.

const (
	trunkUser = "alice"
	trunkPass = "s3cret-Pa55"
	farNum    = "+6590000001"
	didNum    = "6561234567"
)

// logBuffer is a slog destination the test can read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLoggedServer is startServer with the server's log (debug level) kept for the test.
func startLoggedServer(t *testing.T, onCall func(*Leg)) (*Server, *logBuffer) {
	t.Helper()
	if !testpeer.Available() {
		t.Skip("sipp not installed")
	}
	buf := &logBuffer{}
	s, err := NewServer(Config{Listen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, onCall) }()
	t.Cleanup(func() {
		cancel()
		<-errc
		if t.Failed() {
			t.Logf("server log:\n%s", buf.String())
		}
	})
	return s, buf
}

// Dial through the provider: its 407 challenge is answered with the trunk's credentials
// (MD5 and SHA-256), the call reaches the phone behind the number with our identity in From
// and P-Asserted-Identity; wrong or missing credentials fail the call.
func TestDialThroughProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		algorithm string
		user      string
		pass      string
		callerID  string
		want      DialOutcome
		identity  string // From and P-Asserted-Identity user the phone sees
	}{
		{name: "md5", algorithm: "MD5", user: trunkUser, pass: trunkPass, callerID: "+6511111111", want: DialAnswered, identity: "+6511111111"},
		{name: "sha-256", algorithm: "SHA-256", user: trunkUser, pass: trunkPass, want: DialAnswered, identity: "ivrd-out"},
		{name: "wrong password", algorithm: "MD5", user: trunkUser, pass: "nope", want: DialFailed},
		{name: "no credentials", algorithm: "MD5", want: DialFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, log := startLoggedServer(t, func(l *Leg) {})
			var far string
			var wait func() (testpeer.Result, error)
			if tt.want == DialAnswered {
				far, wait = startAnswerer(t, testpeer.Answerer{HangupAfter: 500 * time.Millisecond})
			} else {
				far = freePort(t) // never reached
			}
			k := testpeer.Kamailio{User: trunkUser, Password: trunkPass, Algorithm: tt.algorithm, Routes: map[string]string{farNum: far}}.Start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			l, outcome, err := s.Dial(ctx, DialOptions{Trunk: "sip:" + k.Addr, Username: tt.user, Password: tt.pass,
				Dest: farNum, CallerID: tt.callerID, FromUser: "ivrd-out", RingTimeout: 10 * time.Second})
			if outcome != tt.want {
				t.Fatalf("Dial = %q, %v; want %q\nkamailio: %v", outcome, err, tt.want, k.Events(""))
			}
			// Kamailio logs each request, then what it did with it; its log reaches us a moment later.
			challenges := k.WaitEvents("challenge", 1, 2*time.Second)
			if len(challenges) == 0 || challenges[0].Fields["code"] != "407" {
				t.Errorf("provider's challenges: %v", challenges)
			}
			if strings.Contains(log.String(), trunkPass) {
				t.Errorf("the password is in the log")
			}
			if tt.want != DialAnswered {
				k.WaitEvents("challenge", len(k.Events("request")), 2*time.Second) // every INVITE was challenged
				if l != nil || err == nil || len(k.Events("authorized")) != 0 || len(k.Events("route")) != 0 {
					t.Errorf("Dial = %v, %v; provider authorized %v, routed %v", l, err, k.Events("authorized"), k.Events("route"))
				}
				return
			}
			waitDone(t, l, 5*time.Second) // the phone hangs up
			auth := k.WaitEvents("authorized", 1, 2*time.Second)
			if len(auth) != 1 || auth[0].Fields["user"] != trunkUser || auth[0].Fields["algorithm"] != tt.algorithm {
				t.Errorf("provider authorized %v, want user %s with %s", auth, trunkUser, tt.algorithm)
			}
			res, err := wait()
			if err != nil {
				t.Fatalf("phone: %v\n%s", err, res.Trace)
			}
			if res.RequestUser != farNum || res.FromUser != tt.identity || res.AssertedUser != tt.identity {
				t.Errorf("phone got INVITE for %q from %q asserting %q; want %q from and asserting %q",
					res.RequestUser, res.FromUser, res.AssertedUser, farNum, tt.identity)
			}
			if !res.Answered || res.ByeFromServer {
				t.Errorf("phone: answered %v, BYE from us %v", res.Answered, res.ByeFromServer)
			}
		})
	}
}
