package e2e

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestDrain: SIGTERM with --drain-timeout refuses new calls (503 with Retry-After) and lets
// the live ones go on: a monitored call that ends during the drain gets its recording and
// notifications as always, one still up at the timeout is hung up with BYE and its recording
// delivered too; a second SIGTERM ends the drain at once.
func TestDrain(t *testing.T) {
	t.Run("calls finish, the rest is hung up at the timeout", func(t *testing.T) {
		const drain = 6 * time.Second
		data := filepath.Join(t.TempDir(), "data")
		a := newAppOn(t, data, number)
		p := startIvrd(t, data, "", "", "--drain-timeout", drain.String())
		a.ivrd = "http://" + p.http
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		target := strings.TrimPrefix(number, "+")

		// The first caller hangs up 6 s after its answer, 3 s into the drain; the second stays.
		early := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: target, From: callerNum, HangupAfter: 6 * time.Second,
			Script: []testpeer.Step{testpeer.SendAudio(audio.SineWave(1000, 20*time.Second, 8000))}, Timeout: 30 * time.Second})
		sidEarly, tEarly := answerWithMonitor(t, a, callerNum)
		late := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: target, From: callerNum2,
			Script: []testpeer.Step{testpeer.SendAudio(audio.SineWave(1500, 30*time.Second, 8000))}, Timeout: 30 * time.Second})
		sidLate, tLate := answerWithMonitor(t, a, callerNum2)

		time.Sleep(time.Until(tEarly.Add(3 * time.Second)))
		tTerm := time.Now()
		p.signal(syscall.SIGTERM)
		time.Sleep(300 * time.Millisecond)

		// A new caller is refused while the drain runs.
		res := <-peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: target, From: callerNum3, Timeout: 10 * time.Second})
		retry := ""
		for _, m := range testpeer.Messages(res.Trace) {
			if m.Received && m.Status == 503 {
				retry, _ = m.Header("Retry-After")
			}
		}
		if secs, err := strconv.Atoi(retry); res.Status != 503 || err != nil || secs < 1 || secs > int(drain/time.Second) {
			t.Fatalf("INVITE during the drain: status %d, Retry-After %q\n%s", res.Status, retry, res.Trace)
		}

		// The first call ends during the drain: its recording comes, complete.
		n := a.next(10 * time.Second)
		expect(t, n, "/monitor", map[string]string{"session": sidEarly, "call_state": "ended", "monitor_url": "*"})
		if n.at.Sub(tTerm) > drain {
			t.Fatalf("the call that ended during the drain was notified %v after SIGTERM", n.at.Sub(tTerm))
		}
		code, mp3 := download(t, n.params.Get("monitor_url"))
		if code != 200 {
			t.Fatal("download:", code)
		}
		pcm := decodeMP3(t, mp3)
		if tone, length := toneLen(pcm, 1000), audio.Duration(len(pcm)); !near(length, 6*time.Second, time.Second) || tone < length*8/10 {
			t.Fatalf("recording of the call that ended during the drain: %v long, %v of the caller's tone", length, tone)
		}
		re := <-early
		if !re.Answered || re.ByeFromServer {
			t.Fatalf("first caller: answered %v, BYE from ivrd %v (it hung up itself)", re.Answered, re.ByeFromServer)
		}

		// The second is hung up at the timeout, and its recording delivered.
		r := <-late
		if !r.ByeFromServer || !near(r.ByeAt.Sub(tTerm), drain, 1500*time.Millisecond) {
			t.Fatalf("second caller: BYE from ivrd %v, %v after SIGTERM (drain %v)", r.ByeFromServer, r.ByeAt.Sub(tTerm), drain)
		}
		n = a.next(10 * time.Second)
		expect(t, n, "/monitor", map[string]string{"session": sidLate, "call_state": "ended", "monitor_url": "*"})
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			t.Fatal("ivrd did not exit after the drain")
		}
		log := p.logText()
		for _, s := range []string{"drain started", "calls=2", "drain: calls left", "calls=1", "INVITE refused: draining (503)",
			`msg="drain ended" reason=timeout calls_left=1`} {
			if !strings.Contains(log, s) {
				t.Errorf("no %q in the log", s)
			}
		}
		// The recording is served by the next start (same data, same signing key and URL).
		startIvrd(t, data, p.http, "")
		code, mp3 = download(t, n.params.Get("monitor_url"))
		if code != 200 {
			t.Fatal("download after restart:", code)
		}
		pcm = decodeMP3(t, mp3)
		want := r.ByeAt.Sub(tLate)
		if tone, length := toneLen(pcm, 1500), audio.Duration(len(pcm)); !near(length, want, time.Second) || tone < length*8/10 {
			t.Fatalf("recording of the call hung up at the timeout: %v long (call %v), %v of the caller's tone", length, want, tone)
		}
		t.Logf("drain: 503 with Retry-After %s; call ended %v into the drain and was recorded; the other was hung up %v after SIGTERM and recorded (%v)",
			retry, re.ByeAt.Sub(tTerm).Round(time.Millisecond), r.ByeAt.Sub(tTerm).Round(time.Millisecond), want.Round(time.Millisecond))
	})

	t.Run("a second SIGTERM cuts it short", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		a := newAppOn(t, data, number)
		p := startIvrd(t, data, "", "", "--drain-timeout", "60s")
		a.ivrd = "http://" + p.http
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		call := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum, Timeout: 40 * time.Second})
		sid, _ := answerWithMonitor(t, a, callerNum)
		p.signal(syscall.SIGTERM)
		time.Sleep(time.Second)
		tSecond := time.Now()
		p.signal(syscall.SIGTERM)
		r := <-call
		if !r.ByeFromServer || r.ByeAt.Sub(tSecond) > 2*time.Second {
			t.Fatalf("caller: BYE from ivrd %v, %v after the second SIGTERM", r.ByeFromServer, r.ByeAt.Sub(tSecond))
		}
		expect(t, a.next(10*time.Second), "/monitor", map[string]string{"session": sid, "call_state": "ended", "monitor_url": "*"})
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			t.Fatal("ivrd did not exit")
		}
		if log := p.logText(); !strings.Contains(log, `msg="drain ended" reason="cut short" calls_left=1`) {
			t.Errorf("log: %s", tail(log, 10))
		}
		t.Logf("second SIGTERM: BYE %v later", r.ByeAt.Sub(tSecond).Round(time.Millisecond))
	})
}
