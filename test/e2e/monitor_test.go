package e2e

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

const number = "+6561234567"

// peerCall places call in the background and returns a channel with its result.
func peerCall(ctx context.Context, t *testing.T, c testpeer.Call) <-chan testpeer.Result {
	ch := make(chan testpeer.Result, 1)
	go func() {
		res, err := c.Run(ctx)
		if err != nil && ctx.Err() == nil {
			t.Logf("sipp: %v\n%s\n%s", err, res.Stderr, tail(res.Trace, 40))
		}
		ch <- res
	}()
	return ch
}

func rmsBetween(pcm []int16, from, to time.Duration) float64 {
	a, b := audio.Samples(from), audio.Samples(to)
	a, b = max(a, 0), min(b, len(pcm))
	if a >= b {
		return 0
	}
	return audio.RMS(pcm[a:b])
}

func near(got, want, tol time.Duration) bool {
	return math.Abs(float64(got-want)) <= float64(tol)
}

// TestMonitorCallEndToEnd is the seed's scenario on a real call: a sipp caller dials in and sends a
// 1 kHz tone 4 s after the answer; the app runs Monitor(msg) → Play → Hangup(msg) over HTTP; the
// Monitor MP3 must hold the prompts and the caller's tone at the right times, for the call's length.
func TestMonitorCallEndToEnd(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "")
	a.ivrd = "http://" + p.http
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tone := audio.SineWave(1000, time.Second, 12000)
	resc := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), From: "6511111111",
		Script: []testpeer.Step{testpeer.Pause(4 * time.Second), testpeer.SendAudio(tone)}, Timeout: 40 * time.Second})

	ans := a.next(15 * time.Second)
	if ans.path != "/answer" || ans.params.Get("ivr_block") != "answer" || ans.params.Get("call_state") != "ringing" ||
		ans.params.Get("from") != "+6511111111" || ans.params.Get("to") != number || ans.params.Get("shop") != "42" ||
		ans.params.Get("txn_ref") == "" {
		t.Fatalf("answer notification: %s %v", ans.path, ans.params)
	}
	sid := ans.params.Get("session")

	tAns := time.Now()
	if st := a.call("middle/monitor", url.Values{"session": {sid}, "msg": {"This call is recorded."}, "tag": {"order-7"},
		"notify_url": {a.url("/monitor?shop=42")}}); st != "success_ok" {
		t.Fatal("monitor:", st)
	}
	if st := a.call("middle/monitor", url.Values{"session": {sid}, "notify_url": {a.url("/monitor")}}); st != "error_session_not_ready" {
		t.Fatal("second block while busy:", st)
	}
	mon := a.next(15 * time.Second)
	if mon.params.Get("ivr_block") != "monitor" || mon.params.Get("call_state") != "ongoing" || mon.params.Get("tag") != "order-7" ||
		mon.params.Get("shop") != "42" || mon.params.Get("session") != sid {
		t.Fatalf("monitor notification: %v", mon.params)
	}
	tRec := mon.at
	if st := a.call("middle/monitor", url.Values{"session": {sid}, "notify_url": {a.url("/monitor")}}); st != "error_monitor_in_progress" {
		t.Fatal("second monitor:", st)
	}
	if st := a.call("middle/play", url.Values{"session": {sid}, "msg": {"Please hold while we check your order."}, "notify_url": {a.url("/play")}}); st != "success_ok" {
		t.Fatal("play:", st)
	}
	play := a.next(15 * time.Second)
	if play.params.Get("ivr_block") != "play" || play.params.Get("call_state") != "ongoing" {
		t.Fatalf("play notification: %v", play.params)
	}
	tPlayed := play.at
	// The caller's tone runs 4–5 s after the answer; hang up 1.5 s after it.
	time.Sleep(time.Until(tAns.Add(6500 * time.Millisecond)))
	tHang := time.Now()
	if st := a.call("end/hangup", url.Values{"session": {sid}, "msg": {"Goodbye."}, "notify_url": {a.url("/hangup")}}); st != "success_ok" {
		t.Fatal("hangup:", st)
	}
	var hang, final note
	for i := 0; i < 2; i++ {
		n := a.next(15 * time.Second)
		if n.path == "/hangup" {
			hang = n
		} else {
			final = n
		}
	}
	if hang.params.Get("ivr_block") != "hangup" || hang.params.Get("call_state") != "ended" || hang.params.Get("duration") != "1" ||
		hang.params.Get("date") == "" || hang.params.Get("currency") == "" {
		t.Fatalf("hangup notification: %v", hang.params)
	}
	fp := final.params
	if final.path != "/monitor" || fp.Get("ivr_block") != "monitor" || fp.Get("call_state") != "ended" || fp.Get("session") != sid ||
		fp.Get("txn_ref") != ans.params.Get("txn_ref") || fp.Get("from") != "+6511111111" || fp.Get("to") != number ||
		fp.Get("tag") != "order-7" || fp.Get("shop") != "42" || fp.Get("monitor_url") == "" {
		t.Fatalf("monitor_url notification: %s %v", final.path, fp)
	}
	tEnd := hang.at
	if st := a.call("middle/play", url.Values{"session": {sid}}); st != "error_session_ended" {
		t.Fatal("after the end:", st)
	}

	res := <-resc
	if !res.Answered || !res.ByeFromServer {
		t.Fatalf("sipp: answered=%v bye=%v status=%d", res.Answered, res.ByeFromServer, res.Status)
	}
	if audio.RMS(res.Heard) < 200 {
		t.Fatalf("the caller heard no prompts (RMS %.0f)", audio.RMS(res.Heard))
	}

	// The recording, from a real decoder.
	murl := fp.Get("monitor_url")
	code, mp3 := download(t, murl)
	if code != 200 || len(mp3) < 1000 {
		t.Fatalf("download %s: %d, %d bytes", murl, code, len(mp3))
	}
	pcm := decodeMP3(t, mp3)
	length, callerTone := checkCallerTone(t, pcm, tAns, tRec, tEnd)
	want := tEnd.Sub(tRec)
	t.Logf("recording %v (call %v), %d bytes; 1 kHz tone at %v for %v", length, want, len(mp3), callerTone.Start, callerTone.Len())
	playLen := tPlayed.Sub(tRec)
	if r := rmsBetween(pcm, 100*time.Millisecond, playLen-100*time.Millisecond); r < 300 {
		t.Fatalf("Play prompt missing from the recording: RMS %.0f over 0–%v", r, playLen)
	}
	if r := rmsBetween(pcm, tHang.Sub(tRec)+150*time.Millisecond, want-150*time.Millisecond); r < 300 {
		t.Fatalf("Hangup prompt missing from the recording: RMS %.0f", r)
	}
	// Between the tone and the goodbye nobody sent audio: silence, for its full length.
	if r := rmsBetween(pcm, callerTone.End+200*time.Millisecond, tHang.Sub(tRec)-100*time.Millisecond); r > 100 {
		t.Fatalf("expected silence after the tone, RMS %.0f", r)
	}

	// Signed URL: tampering and expiry are refused, Range works.
	u, _ := url.Parse(murl)
	q := u.Query()
	for name, mod := range map[string]func(url.Values){
		"signature": func(v url.Values) { // another hex digit first ("A" would be the same byte as "a")
			s, d := v.Get("Signature"), "0"
			if s[0] == '0' {
				d = "1"
			}
			v.Set("Signature", d+s[1:])
		},
		"expires":  func(v url.Values) { v.Set("Expires", "9999999999") },
		"expired":  func(v url.Values) { v.Set("Expires", "1000000000") },
		"unsigned": func(v url.Values) { v.Del("Signature") },
	} {
		v := url.Values{}
		for k, x := range q {
			v[k] = append([]string(nil), x...)
		}
		mod(v)
		t2 := *u
		t2.RawQuery = v.Encode()
		if code, _ := download(t, t2.String()); code != http.StatusForbidden {
			t.Errorf("tampered URL (%s): HTTP %d, want 403", name, code)
		}
	}
	other := *u
	other.Path = strings.Replace(u.Path, "rec-", "rec-x", 1)
	if code, _ := download(t, other.String()); code != http.StatusForbidden {
		t.Errorf("URL for another recording with this signature: HTTP %d, want 403", code)
	}
	req, _ := http.NewRequest("GET", murl, nil)
	req.Header.Set("Range", "bytes=100-199")
	rr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rr.Body.Close()
	if rr.StatusCode != http.StatusPartialContent || rr.ContentLength != 100 {
		t.Fatalf("range: %d %d", rr.StatusCode, rr.ContentLength)
	}
}

// checkCallerTone checks the Monitor recording pcm of a call whose caller sent a 1 s 1 kHz
// tone 4 s after the answer at tAns, recorded from tRec to tEnd: it lasts as long, and holds
// the tone once, where it was sent. It returns the length and the tone.
func checkCallerTone(t *testing.T, pcm []int16, tAns, tRec, tEnd time.Time) (time.Duration, audio.Span) {
	t.Helper()
	length, want := audio.Duration(len(pcm)), tEnd.Sub(tRec)
	if !near(length, want, 500*time.Millisecond) {
		t.Fatalf("recording is %v long, the monitored call %v", length, want)
	}
	spans := audio.ToneSpans(pcm, audio.Rate, 1000, 40*time.Millisecond, 0.5)
	wantTone := tAns.Add(4 * time.Second).Sub(tRec)
	if len(spans) != 1 || !near(spans[0].Start, wantTone, 350*time.Millisecond) || !near(spans[0].Len(), time.Second, 200*time.Millisecond) {
		t.Fatalf("caller's 1 kHz tone: spans %v, want one of 1 s at %v", spans, wantTone)
	}
	return length, spans[0]
}

// TestUnknownNumberIs404: calls to numbers no app owns are refused.
func TestUnknownNumberIs404(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newAppOn(t, data, number)
	p := startIvrd(t, data, "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := <-peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: "6599999999", Timeout: 10 * time.Second})
	if res.Answered || res.Status != 404 {
		t.Fatalf("answered=%v status=%d", res.Answered, res.Status)
	}
}

// TestMonitorSurvivesSIGKILL: ivrd is killed mid-call; the next start finalizes the recording and
// sends the monitor notification with a playable MP3 holding what was heard.
func TestMonitorSurvivesSIGKILL(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "")
	a.ivrd = "http://" + p.http
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	peerCtx, stopPeer := context.WithCancel(ctx)
	defer stopPeer()
	tone := audio.SineWave(1000, 15*time.Second, 12000)
	peerCall(peerCtx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), From: "6511111111",
		Script: []testpeer.Step{testpeer.SendAudio(tone)}, Timeout: 30 * time.Second})

	sid := a.next(15 * time.Second).params.Get("session")
	if st := a.call("middle/monitor", url.Values{"session": {sid}, "tag": {"crash"}, "notify_url": {a.url("/monitor")}}); st != "success_ok" {
		t.Fatal(st)
	}
	mon := a.next(15 * time.Second)
	if mon.params.Get("call_state") != "ongoing" {
		t.Fatal(mon.params)
	}
	time.Sleep(3 * time.Second)
	tKill := time.Now()
	p.kill()
	recorded := tKill.Sub(mon.at)

	p2 := startIvrd(t, data, p.http, p.sip)
	_ = p2
	n := a.next(20 * time.Second)
	if n.params.Get("ivr_block") != "monitor" || n.params.Get("call_state") != "ended" || n.params.Get("session") != sid ||
		n.params.Get("tag") != "crash" || n.params.Get("monitor_url") == "" {
		t.Fatalf("recovered notification: %v", n.params)
	}
	code, mp3 := download(t, n.params.Get("monitor_url"))
	if code != 200 {
		t.Fatal("download:", code)
	}
	pcm := decodeMP3(t, mp3)
	length := audio.Duration(len(pcm))
	if length < recorded-time.Second || length > recorded+300*time.Millisecond {
		t.Fatalf("recovered recording is %v; %v was recorded before the kill", length, recorded)
	}
	t.Logf("recovered recording %v; %v recorded before SIGKILL", length, recorded)
	var toneLen time.Duration
	for _, s := range audio.ToneSpans(pcm, audio.Rate, 1000, 40*time.Millisecond, 0.5) {
		toneLen += s.Len()
	}
	if toneLen < length*8/10 {
		t.Fatalf("caller's tone covers %v of %v", toneLen, length)
	}
	if st := a.call("middle/play", url.Values{"session": {sid}}); st != "error_invalid_session" && st != "error_session_ended" {
		t.Fatal("session after recovery:", st)
	}
	// The recovered recording is listed (an extension): the Monitor's, as long as its file.
	page, err := a.api().Recordings(context.Background(), url.Values{"session": {sid}})
	if err != nil || page.Status != "success_ok" || len(page.Entries) != 1 {
		t.Fatalf("recordings/list after recovery: %+v %v", page, err)
	}
	e := page.Entries[0]
	ms, _ := strconv.Atoi(e.DurationMS)
	if e.Kind != "monitor" || e.Channels != "mono" || !strings.Contains(n.params.Get("monitor_url"), "/"+e.ID+".mp3?") ||
		!near(time.Duration(ms)*time.Millisecond, length, 100*time.Millisecond) {
		t.Fatalf("recovered recording listed as %+v; want the Monitor's of %v", e, length)
	}
	a.quiet(t, time.Second)
}

// quiet asserts that no further notification arrives for d (recovery settles a session once).
func (a *app) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case n := <-a.notes:
		t.Fatalf("unexpected notification: %s %v", n.path, n.params)
	case <-time.After(d):
	}
}

// TestServerCallLimitIs503: with --max-calls 1 a second caller is refused with 503 while the
// first call is up, and once it has ended the next caller gets through.
func TestServerCallLimitIs503(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "", "--max-calls", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	num := strings.TrimPrefix(number, "+")

	first := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: num, CancelAfter: 4 * time.Second, Timeout: 20 * time.Second})
	if n := a.next(10 * time.Second); n.params.Get("ivr_block") != "answer" {
		t.Fatalf("first call: %v", n.params)
	}
	second := <-peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: num, Timeout: 10 * time.Second})
	if second.Answered || second.Status != 503 {
		t.Fatalf("second call while the first rings: answered=%v status=%d, want 503", second.Answered, second.Status)
	}
	if res := <-first; res.Status != 487 {
		t.Fatalf("first call: status %d, want 487 (cancelled)", res.Status)
	}
	third := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: num, CancelAfter: time.Second, Timeout: 20 * time.Second})
	for {
		n := a.next(10 * time.Second)
		if n.params.Get("ivr_block") == "answer" {
			break // the third call was let in
		}
	}
	if res := <-third; res.Status != 487 {
		t.Fatalf("third call: status %d, want 487 (let in, then cancelled)", res.Status)
	}
}
