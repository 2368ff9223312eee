package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testfs"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// probe returns the status and body of ivrd's probe at path (/healthz, /readyz).
func probe(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestDiskFull: ivrd's data directory on a small tmpfs that fills up during 10 monitored
// calls. While it is full, new calls get SIP 503 and /readyz answers 503 saying why (/healthz,
// liveness, stays 200); the
// monitor notifications of the calls that end meanwhile are kept; once space is freed every
// one arrives within 60 s, its recording holding the caller's tone sent before the disk
// filled, and new calls are taken again — all without a restart.
func TestDiskFull(t *testing.T) {
	data := testfs.Tmpfs(t, "64m") // ivrd's log goes beside it, not on it
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "")
	a.ivrd = "http://" + p.http
	pid := p.cmd.Process.Pid

	const calls = 10
	ongoing := make(chan string, calls)
	ended := make(chan note, calls)
	answered := make(chan string, calls+1)
	driverErrs := driveApp(t, a, func(n note) (string, url.Values) {
		sid := n.params.Get("session")
		switch {
		case n.path == "/answer":
			answered <- sid
			return "middle/monitor", url.Values{"session": {sid}, "notify_url": {a.url("/monitor")}}
		case n.path == "/monitor" && n.params.Get("call_state") == "ongoing":
			ongoing <- sid
		case n.path == "/monitor" && n.params.Get("call_state") == "ended":
			ended <- n
		}
		return "", nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tone := audio.SineWave(1000, 2*time.Second, 12000)
	var results []<-chan testpeer.Result
	for range calls {
		results = append(results, peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum,
			Script: []testpeer.Step{testpeer.Pause(time.Second), testpeer.SendAudio(tone)}, HangupAfter: 12 * time.Second, Timeout: 40 * time.Second}))
	}
	for i := range calls {
		select {
		case <-ongoing:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d Monitors started: %v", i, calls, driverErrs())
		}
	}
	time.Sleep(4 * time.Second) // every caller's tone (1 s to 3 s after the answer) is recorded
	free := testfs.Fill(t, data)

	// Seen within a probe interval: /readyz and new calls.
	deadline := time.Now().Add(5 * time.Second)
	code, body := probe(t, p.http, "/readyz")
	for code == http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		code, body = probe(t, p.http, "/readyz")
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "data directory: data directory full") {
		t.Fatalf("/readyz with the disk full: %d %q", code, body)
	}
	if code, body := probe(t, p.http, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz (liveness) with the disk full: %d %q", code, body)
	}
	refused := <-peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum2, Timeout: 10 * time.Second})
	if refused.Status != 503 {
		t.Fatalf("new call with the disk full: SIP %d, want 503", refused.Status)
	}
	for _, rc := range results {
		if res := <-rc; !res.Answered {
			t.Fatalf("a monitored call was not answered: %d", res.Status)
		}
	}
	time.Sleep(3 * time.Second)
	if n := len(ended); n != 0 {
		t.Logf("%d monitor notifications came while the disk was full", n)
	}

	free()
	freed := time.Now()
	var urls []string
	for i := range calls {
		select {
		case n := <-ended:
			urls = append(urls, n.params.Get("monitor_url"))
		case <-time.After(time.Until(freed.Add(60 * time.Second))):
			t.Fatalf("%d of %d monitor notifications within 60 s of freeing space", i, calls)
		}
	}
	t.Logf("every monitor notification %v after space was freed", time.Since(freed).Round(time.Millisecond))
	for _, u := range urls {
		code, mp3 := download(t, u)
		if code != 200 {
			t.Fatalf("recording %s: HTTP %d", u, code)
		}
		pcm := decodeMP3(t, mp3)
		if d := toneLen(pcm, 1000); d < 1500*time.Millisecond {
			t.Fatalf("recording holds %v of the caller's 2 s tone sent before the disk filled", d)
		}
	}
	if code, body := probe(t, p.http, "/readyz"); code != 200 {
		t.Fatalf("/readyz after freeing space: %d %q", code, body)
	}
	again := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum2, HangupAfter: 2 * time.Second, Timeout: 20 * time.Second})
	select {
	case <-answered:
	case <-time.After(15 * time.Second):
		t.Fatal("a new call after freeing space did not reach the app")
	}
	<-again
	select {
	case <-p.exited:
		t.Fatal("ivrd exited")
	default:
	}
	if p.cmd.Process.Pid != pid {
		t.Fatal("ivrd was restarted")
	}
	log := p.log()
	for _, want := range []string{"refusing new calls", "call refused: data directory cannot be written", "writable again"} {
		if !strings.Contains(log, want) {
			t.Errorf("ivrd log does not say %q", want)
		}
	}
	// What was owed while nothing could be written was held in memory: by the sessions (their
	// journal writes failed, so nothing was queued yet) or by the notification queue.
	if !strings.Contains(log, "msg=journal") && !strings.Contains(log, "keeping them in memory") {
		t.Error("ivrd log shows no notification held in memory while the disk was full")
	}
}
