package e2e

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestDemoOutOfTheBox is what a new user gets from `make run`, including the first start
// failing on a busy HTTP port: the data directory it created then (app, demo number) serves
// the next start on another port, a call to the demo number is recorded, and the recording
// is in the console's demo page, behind the sign-in, also after a restart.
func TestDemoOutOfTheBox(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	out, err := exec.Command(ivrdBin, "serve", "--data", data, "--http", busy.Addr().String(), "--sip", freeSIPPort(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("first start on a busy port: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "sip:100@") {
		t.Fatalf("first start did not print the demo number:\n%s", out)
	}
	appID, token := firstStartCredentials(t, string(out))

	p := startIvrd(t, data, "", "", "--demo-listen", "2s")
	anon := newConsoleUser(t, p)
	if pg := anon.get("/demo/"); pg.code != 303 || pg.location != "/console/demo" {
		t.Fatalf("/demo/: %d %s", pg.code, pg.location)
	}
	if pg := anon.get("/console/demo"); pg.code != 303 || !strings.HasPrefix(pg.location, "/console/login") {
		t.Fatalf("the demo page without signing in: %d %s", pg.code, pg.location)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tone := audio.SineWave(1000, 1500*time.Millisecond, 12000)
	res := <-peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: "100", From: "6511111111",
		Script: []testpeer.Step{testpeer.Pause(3 * time.Second), testpeer.SendAudio(tone)}, Timeout: 40 * time.Second})
	if !res.Answered || !res.ByeFromServer || audio.RMS(res.Heard) < 200 {
		t.Fatalf("demo call: answered=%v bye=%v heard RMS %.0f", res.Answered, res.ByeFromServer, audio.RMS(res.Heard))
	}

	u := newConsoleUser(t, p)
	if pg := u.signIn(appID, "not the token"); pg.code != 401 {
		t.Fatalf("a wrong token: %d", pg.code)
	}
	if pg := u.signIn(appID, token); pg.code != 303 {
		t.Fatalf("sign-in with the printed credentials: %d\n%s", pg.code, pg.body)
	}
	var links []string
	for deadline := time.Now().Add(10 * time.Second); len(links) == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		links = recordingLinks(u.get("/console/demo").body)
	}
	if len(links) != 1 {
		t.Fatalf("recordings on the demo page: %v\n%s", links, u.last)
	}
	checkDemoTone(t, u, links[0])
	if pg := anon.get(links[0]); pg.code != 303 {
		t.Fatalf("the recording without signing in: %d", pg.code)
	}

	// The recording is the catalog's: it is there after a restart, on yet another port.
	p.signal(syscall.SIGTERM)
	<-p.exited
	p2 := startIvrd(t, data, "", "")
	u2 := newConsoleUser(t, p2)
	u2.signIn(appID, token)
	if got := recordingLinks(u2.get("/console/demo").body); len(got) != 1 || got[0] != links[0] {
		t.Fatalf("after a restart the demo page lists %v, want %v", got, links)
	}
	checkDemoTone(t, u2, links[0])
}

// checkDemoTone downloads a demo recording through the console and finds the caller's tone.
func checkDemoTone(t *testing.T, u *consoleUser, link string) {
	t.Helper()
	pg := u.get(link)
	if pg.code != 200 {
		t.Fatalf("recording %s: %d", link, pg.code)
	}
	pcm := decodeMP3(t, []byte(pg.body))
	var toneLen time.Duration
	for _, s := range audio.ToneSpans(pcm, audio.Rate, 1000, 40*time.Millisecond, 0.5) {
		toneLen += s.Len()
	}
	if toneLen < time.Second {
		t.Fatalf("the caller's tone is %v long in the demo recording", toneLen)
	}
}
