package telephony

import (
	"context"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
	"github.com/ivrd/ivrd/internal/testlog"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// Once named, every line the leg logs carries its session beside its Call-ID; EndedByRemote
// tells a caller's BYE or CANCEL from ivrd's hang-up or refusal.
func TestLegSessionAndEnd(t *testing.T) {
	cases := []struct {
		name   string
		call   testpeer.Call
		handle func(l *Leg)
		remote bool
	}{
		{"caller hangs up", testpeer.Call{Number: "100", HangupAfter: 300 * time.Millisecond}, func(l *Leg) {
			_, cancel, _ := answerFor(l, 10*time.Second)
			defer cancel()
			<-l.Done()
		}, true},
		{"ivrd hangs up", testpeer.Call{Number: "100"}, func(l *Leg) {
			if _, cancel, ok := answerFor(l, 10*time.Second); ok {
				defer cancel()
				time.Sleep(200 * time.Millisecond)
			}
			_ = l.Hangup()
		}, false},
		{"caller cancels", testpeer.Call{Number: "100", CancelAfter: 200 * time.Millisecond}, func(l *Leg) {
			<-l.Done()
		}, true},
		{"ivrd refuses", testpeer.Call{Number: "100"}, func(l *Leg) { _ = l.Reject(404) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, buf := testlog.NewJSON()
			legs := make(chan *Leg, 1)
			s := serve(t, Config{}, func(l *Leg) {
				if l.EndedByRemote() {
					t.Error("EndedByRemote before the end")
				}
				if got := l.NameSession("S-" + c.name); got != l.Logger() {
					t.Error("NameSession returned another logger")
				}
				l.Logger().Info("routed", "transport", l.Transport(), "source", l.Source())
				c.handle(l)
				waitDone(t, l, 10*time.Second)
				legs <- l
			}, log)
			call := c.call
			call.Target, call.Timeout = s.Addr(), 15*time.Second
			if res, err := call.Run(context.Background()); err != nil && c.call.CancelAfter == 0 && c.name != "ivrd refuses" {
				t.Fatalf("sipp: %v\n%s", err, res.Trace)
			}
			var l *Leg
			select {
			case l = <-legs:
			case <-time.After(15 * time.Second):
				t.Fatal("the call did not end")
			}
			time.Sleep(100 * time.Millisecond) // the leg's last lines
			if got := l.EndedByRemote(); got != c.remote {
				t.Errorf("EndedByRemote = %v, want %v", got, c.remote)
			}
			lines, err := testlog.Lines(buf.String())
			if err != nil {
				t.Fatal(err)
			}
			named := false
			for _, ln := range lines {
				if ln["call_id"] != l.ID() {
					continue
				}
				if ln["msg"] == "routed" {
					named = true
					if ln["transport"] != "UDP" || ln["source"] == "" {
						t.Errorf("routed line: %v", ln)
					}
				}
				if named && ln[calllog.Key] != "S-"+c.name {
					t.Errorf("line after naming without the session: %v", ln)
				}
			}
			if !named {
				t.Errorf("no routed line with the call's Call-ID in\n%s", buf.String())
			}
		})
	}
}

// A server listens from the moment Serve serves its sockets until Serve returns.
func TestListening(t *testing.T) {
	s, err := NewServer(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Listening() {
		t.Fatal("listening before Serve")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, func(l *Leg) { _ = l.Reject(404) }) }()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Listening() {
		if time.Now().After(deadline) {
			t.Fatal("not listening 5 s after Serve")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.Listening() {
		t.Fatal("listening after Serve returned")
	}
}
