package e2e

import (
	"context"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestDemoOutOfTheBox is what a new user gets from `make run`: a fresh data directory, one
// command, and a call to the demo number is recorded; the MP3 is listed on the demo page.
func TestDemoOutOfTheBox(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := startIvrd(t, data, "", "", "--demo-listen", "2s")
	logb, _ := os.ReadFile(filepath.Join(data, "..", "data.log"))
	if !strings.Contains(string(logb), "access_token:") || !strings.Contains(string(logb), "sip:100@") {
		t.Fatalf("first start did not print the app credentials and the demo number:\n%s", logb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tone := audio.SineWave(1000, 1500*time.Millisecond, 12000)
	res := <-peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: "100", From: "6511111111",
		Script: []testpeer.Step{testpeer.Pause(3 * time.Second), testpeer.SendAudio(tone)}, Timeout: 40 * time.Second})
	if !res.Answered || !res.ByeFromServer || audio.RMS(res.Heard) < 200 {
		t.Fatalf("demo call: answered=%v bye=%v heard RMS %.0f", res.Answered, res.ByeFromServer, audio.RMS(res.Heard))
	}
	var mp3URL string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, page := download(t, "http://"+p.http+"/demo/")
		if m := regexp.MustCompile(`href="([^"]+\.mp3[^"]*)"`).FindStringSubmatch(string(page)); m != nil {
			mp3URL = html.UnescapeString(m[1])
			break
		}
	}
	if mp3URL == "" {
		t.Fatal("no recording on the demo page")
	}
	code, mp3 := download(t, mp3URL)
	if code != 200 {
		t.Fatal(code)
	}
	pcm := decodeMP3(t, mp3)
	var toneLen time.Duration
	for _, s := range audio.ToneSpans(pcm, audio.Rate, 1000, 40*time.Millisecond, 0.5) {
		toneLen += s.Len()
	}
	if toneLen < time.Second {
		t.Fatalf("the caller's tone is %v long in the demo recording", toneLen)
	}
}
