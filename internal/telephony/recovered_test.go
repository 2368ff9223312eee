package telephony

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestEndDialogAfterCrash: a server carrying an answered call and a ringing one stops dead
// (its sockets closed under it, no BYE, no final response); a new server on the same address
// is given the two snapshots: the answered caller gets a BYE, the ringing one a 500 to its
// INVITE. (test/e2e TestCallsEndedAfterSIGKILL kills the real process, with TCP, a dialled
// call and a BYE crossing the restart.)
func TestEndDialogAfterCrash(t *testing.T) {
	if !testpeer.Available() {
		t.Skip("sipp not installed")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := NewServer(Config{Listen: "127.0.0.1:0", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	snaps := make(chan []byte, 2)
	actx, stopA := context.WithCancel(context.Background())
	defer stopA()
	aDone := make(chan struct{})
	go func() {
		defer close(aDone)
		_ = a.Serve(actx, func(l *Leg) {
			if l.To() == "+100" {
				if err := l.Answer(context.Background()); err != nil {
					t.Errorf("answer: %v", err)
				}
			}
			snaps <- l.Dialog()
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	answered, ringing := make(chan testpeer.Result, 1), make(chan testpeer.Result, 1)
	go func() {
		res, err := testpeer.Call{Target: a.Addr(), Number: "100", Timeout: 30 * time.Second}.Run(ctx)
		if err != nil {
			t.Logf("answered caller: %v", err)
		}
		answered <- res
	}()
	go func() {
		res, err := testpeer.Call{Target: a.Addr(), Number: "200", Timeout: 30 * time.Second}.Run(ctx)
		if err != nil {
			t.Logf("ringing caller: %v", err)
		}
		ringing <- res
	}()
	var got [][]byte
	for range 2 {
		select {
		case s := <-snaps:
			got = append(got, s)
		case <-ctx.Done():
			t.Fatal("calls did not arrive")
		}
	}
	addr := a.Addr()
	a.ls.close() // the process dies: nothing more goes out
	stopA()
	<-aDone

	b, err := NewServer(Config{Listen: addr, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		if err := b.EndDialog(s); err != nil {
			t.Fatalf("EndDialog(%s): %v", s, err)
		}
	}
	bctx, stopB := context.WithCancel(context.Background())
	bDone := make(chan struct{})
	go func() { defer close(bDone); _ = b.Serve(bctx, func(l *Leg) { _ = l.Reject(404) }) }()
	defer func() { stopB(); <-bDone }()

	if res := <-answered; !res.Answered || !res.ByeFromServer {
		t.Errorf("answered caller: answered %v, BYE %v\n%s", res.Answered, res.ByeFromServer, res.Trace)
	}
	if res := <-ringing; res.Status != 500 {
		t.Errorf("ringing caller: status %d, want 500\n%s", res.Status, res.Trace)
	}
}

// TestLegDialog: an incoming call's snapshot names its dialog as the caller sees it, before
// and after the answer; a dialog that ended has none.
func TestLegDialog(t *testing.T) {
	t.Parallel()
	type shot struct {
		ringing, answered []byte
		leg               *Leg
	}
	got := make(chan shot, 1)
	s := startServer(t, func(l *Leg) {
		var sh shot
		sh.leg = l
		sh.ringing = l.Dialog()
		ctx, cancel, ok := answerFor(l, 5*time.Second)
		defer cancel()
		if ok {
			sh.answered = l.Dialog()
		}
		<-ctx.Done()
		_ = l.Hangup()
		got <- sh
	})
	res, err := testpeer.Call{Target: s.Addr(), Number: "100", From: "6511111111", HangupAfter: time.Second, Timeout: 10 * time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, res.Trace)
	}
	sh := <-got
	var ring, ans dialogSnapshot
	if err := json.Unmarshal(sh.ringing, &ring); err != nil {
		t.Fatalf("ringing snapshot %s: %v", sh.ringing, err)
	}
	if err := json.Unmarshal(sh.answered, &ans); err != nil {
		t.Fatalf("answered snapshot %s: %v", sh.answered, err)
	}
	if ring.Answered || len(ring.Vias) != 1 || ring.InviteCSeq != 1 || !ans.Answered || len(ans.Vias) != 0 {
		t.Errorf("ringing %+v\nanswered %+v", ring, ans)
	}
	if ans.Dir != snapIncoming || ans.CallID != sh.leg.ID() || ans.Transport != "UDP" ||
		!strings.Contains(ans.Remote, "sip:6511111111@127.0.0.1") || !strings.Contains(ans.Local, ";tag=") ||
		!strings.HasPrefix(ans.Target, "sip:6511111111@127.0.0.1:") || !strings.HasPrefix(ans.Contact, "sip:ivrd@127.0.0.1:") {
		t.Errorf("answered snapshot %+v", ans)
	}
	d, err := parseSnapshot(sh.answered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseSnapshot(sh.ringing); err != nil {
		t.Fatal(err)
	}
	if d.remTag == "" || !strings.Contains(res.Trace, "tag="+d.localTag) {
		t.Errorf("tags %q/%q not those of the call", d.localTag, d.remTag)
	}
	if sh.leg.Dialog() != nil {
		t.Error("an ended leg still describes its dialog")
	}
}
