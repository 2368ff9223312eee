package prompt

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/outbound"
	"github.com/ivrd/ivrd/internal/testlog"
)

var lastMod = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// checkTone asserts pcm is about d of a freq Hz tone at 8 kHz.
func checkTone(t *testing.T, pcm []int16, freq float64, d time.Duration, minLevel float64) {
	t.Helper()
	got := audio.Duration(len(pcm))
	if got < d-150*time.Millisecond || got > d+250*time.Millisecond { // MP3 adds encoder delay and padding
		t.Errorf("duration %v, want about %v", got, d)
	}
	if len(pcm) < 1600 {
		return
	}
	mid := pcm[len(pcm)/5 : len(pcm)*4/5]
	if lvl := audio.ToneLevel(mid, audio.Rate, freq); lvl < minLevel {
		t.Errorf("%.0f Hz level %.2f, want >= %.2f", freq, lvl, minLevel)
	}
	if rms := audio.RMS(mid); rms < 5000 {
		t.Errorf("RMS %.0f, want a half-scale tone", rms)
	}
}

func TestPrepareURLFormats(t *testing.T) {
	srv := newFileServer(t)
	p := newTestPrompter(t, Options{})
	tests := []struct {
		file     string
		freq     float64
		minLevel float64
	}{
		{"pcm16-8k.wav", 1000, 0.95},
		{"pcm24-44k-stereo.wav", 1000, 0.95},
		{"u8-11k.wav", 1000, 0.9},
		{"ulaw-8k.wav", 1000, 0.95},
		{"alaw-8k.wav", 1000, 0.95},
		{"gsm-in.wav", 1000, 0.7},
		{"tone.gsm", 1000, 0.7},
		{"mono-8k.mp3", 1000, 0.8},
		{"stereo-44k.mp3", 1000, 0.9},
		{"tone2k.mp3", 2000, 0.9},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			srv.set(tc.file, file{body: fixture(t, tc.file)})
			pcm := prepare(t, p, "<url>"+srv.url(tc.file)+"</url>")
			checkTone(t, pcm, tc.freq, time.Second, tc.minLevel)
		})
	}
}

func TestPrepareURLErrors(t *testing.T) {
	srv := newFileServer(t)
	wav := fixture(t, "pcm16-8k.wav")
	mp3 := fixture(t, "mono-8k.mp3")
	gsm := fixture(t, "tone.gsm")
	html := []byte("<!DOCTYPE html>\n<html><body><h1>Welcome</h1></body></html>\n")
	big := bytes.Repeat([]byte{0xd0}, MaxFileBytes+1)
	srv.set("page.mp3", file{body: html})
	srv.set("page.wav", file{body: html})
	srv.set("page.gsm", file{body: html})
	srv.set("wav-named.mp3", file{body: wav})
	srv.set("mp3-named.wav", file{body: mp3})
	srv.set("gsm-named.wav", file{body: gsm})
	srv.set("mp3-named.gsm", file{body: mp3})
	srv.set("noise.mp3", file{body: bytes.Repeat([]byte("0123456789abcdef"), 1000)})
	srv.set("empty.wav", file{body: nil})
	srv.set("big.gsm", file{body: big})
	srv.set("big-chunked.gsm", file{body: big, chunked: true})
	srv.set("gone.mp3", file{status: http.StatusGone})
	srv.set("error.wav", file{status: http.StatusInternalServerError})
	srv.set("ok.wav", file{body: wav})

	tests := []struct {
		name, msg, want string
	}{
		{"html as mp3", "<url>" + srv.url("page.mp3") + "</url>", StatusInvalidFileFormat},
		{"html as wav", "<url>" + srv.url("page.wav") + "</url>", StatusInvalidFileFormat},
		{"html as gsm", "<url>" + srv.url("page.gsm") + "</url>", StatusInvalidFileFormat},
		{"wav named mp3", "<url>" + srv.url("wav-named.mp3") + "</url>", StatusInvalidFileFormat},
		{"mp3 named wav", "<url>" + srv.url("mp3-named.wav") + "</url>", StatusInvalidFileFormat},
		{"gsm named wav", "<url>" + srv.url("gsm-named.wav") + "</url>", StatusInvalidFileFormat},
		{"mp3 named gsm", "<url>" + srv.url("mp3-named.gsm") + "</url>", StatusInvalidFileFormat},
		{"noise as mp3", "<url>" + srv.url("noise.mp3") + "</url>", StatusInvalidFileFormat},
		{"empty wav", "<url>" + srv.url("empty.wav") + "</url>", StatusInvalidFileFormat},
		{"over 10 MB", "<url>" + srv.url("big.gsm") + "</url>", StatusInvalidFileSize},
		{"over 10 MB, no Content-Length", "<url>" + srv.url("big-chunked.gsm") + "</url>", StatusInvalidFileSize},
		{"404", "<url>" + srv.url("missing.mp3") + "</url>", StatusDownloadFailed},
		{"410", "<url>" + srv.url("gone.mp3") + "</url>", StatusDownloadFailed},
		{"500", "<url>" + srv.url("error.wav") + "</url>", StatusDownloadFailed},
		{"connection refused", "<url>http://127.0.0.1:1/a.wav</url>", StatusDownloadFailed},
		{"5 redirects", "<url>" + srv.URL + "/redirect/5/ok.wav</url>", ""},
		{"6 redirects", "<url>" + srv.URL + "/redirect/6/ok.wav</url>", StatusDownloadFailed},
		{"redirect to ftp", "<url>" + srv.URL + "/ftp-redirect.mp3</url>", StatusDownloadFailed},
		{"good file after a bad one still fails", "<url>" + srv.url("ok.wav") + "</url><url>" + srv.url("page.mp3") + "</url>", StatusInvalidFileFormat},
		{"first failure in order wins", "<url>" + srv.url("missing.mp3") + "</url><url>" + srv.url("page.mp3") + "</url>", StatusDownloadFailed},
	}
	p := newTestPrompter(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.Check(tc.msg); err != nil {
				t.Fatalf("Check: %v (these are only found by downloading)", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pcm, err := p.Prepare(ctx, tc.msg)
			if StatusOf(err) != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.want == "" {
				checkTone(t, pcm, 1000, time.Second, 0.95)
			}
		})
	}
}

// <url> downloads and each redirect hop are checked against the outbound policy on the
// address actually dialled: a denied server answers error_msg_download_failed and is never
// asked, and the refusal is logged with its reason.
func TestPrepareURLOutboundPolicy(t *testing.T) {
	allowed := newFileServer(t)
	denied := newFileServerOn(t, "127.0.0.2:0")
	wav := fixture(t, "pcm16-8k.wav")
	allowed.set("ok.wav", file{body: wav})
	denied.set("ok.wav", file{body: wav})
	log, logs := testlog.New()
	policy := outbound.New(outbound.Config{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Log: log})
	p := newTestPrompter(t, Options{Outbound: policy, Log: log})
	tests := []struct {
		name, url, want string
	}{
		{"allowed", allowed.url("ok.wav"), ""},
		{"denied", denied.url("ok.wav"), StatusDownloadFailed},
		{"redirect to denied", allowed.URL + "/to/a.wav?url=" + url.QueryEscape(denied.url("ok.wav")), StatusDownloadFailed},
		{"metadata address", "http://169.254.169.254/latest/a.wav", StatusDownloadFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pcm, err := p.Prepare(ctx, "<url>"+tc.url+"</url>")
			if StatusOf(err) != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.want == "" {
				checkTone(t, pcm, 1000, time.Second, 0.95)
			} else if !errors.Is(err, outbound.ErrDenied) {
				t.Fatalf("err = %v, want an outbound refusal", err)
			}
		})
	}
	if n, _, _ := denied.counts("ok.wav"); n != 0 {
		t.Fatalf("the denied server was asked %d times", n)
	}
	if !strings.Contains(logs.String(), "refused by policy") || !strings.Contains(logs.String(), "--outbound-deny range 127.0.0.2/32") {
		t.Fatalf("no log line saying why:\n%s", logs.String())
	}
}

func TestPrepareSlowServers(t *testing.T) {
	srv := newFileServer(t)
	wav := fixture(t, "pcm16-8k.wav")
	srv.set("late-headers.wav", file{body: wav, delay: 3 * time.Second})
	srv.set("stalls.wav", file{body: wav, stall: 3 * time.Second})
	srv.set("trickle.wav", file{body: wav, trickle: 100 * time.Millisecond}) // 16 s in all
	p := newTestPrompter(t, Options{ReadTimeout: 300 * time.Millisecond, PrepareBudget: time.Second})
	for _, name := range []string{"late-headers.wav", "stalls.wav", "trickle.wav"} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := p.Prepare(context.Background(), "<url>"+srv.url(name)+"</url>")
			if StatusOf(err) != StatusDownloadFailed {
				t.Fatalf("err = %v", err)
			}
			if el := time.Since(start); el > 1500*time.Millisecond {
				t.Fatalf("took %v; read timeout 300 ms, budget 1 s", el)
			}
		})
	}
	// The caller's own deadline counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Prepare(ctx, "<url>"+srv.url("trickle.wav")+"?again</url>"); StatusOf(err) != StatusDownloadFailed {
		t.Fatalf("err = %v", err)
	}
}

func TestPrepareURLRevalidation(t *testing.T) {
	srv := newFileServer(t)
	dir := t.TempDir()
	p := newTestPrompter(t, Options{CacheDir: dir})
	const name = "greeting.mp3"
	u := srv.url(name)
	srv.set(name, file{body: fixture(t, "mono-8k.mp3"), modTime: lastMod})

	first := prepare(t, p, "<url>"+u+"</url>")
	checkTone(t, first, 1000, time.Second, 0.8)
	if r, c, n := srv.counts(name); r != 1 || c != 0 || n != 0 {
		t.Fatalf("first play: requests %d, conditional %d, 304 %d", r, c, n)
	}
	second := prepare(t, p, "<url>"+u+"</url>")
	if !equal16(first, second) {
		t.Fatal("second play differs")
	}
	if r, c, n := srv.counts(name); r != 2 || c != 1 || n != 1 {
		t.Fatalf("second play: requests %d, conditional %d, 304 %d; want 2, 1, 1", r, c, n)
	}

	// A restarted server (new Prompter, same cache dir) revalidates its disk copy.
	p2 := newTestPrompter(t, Options{CacheDir: dir})
	if again := prepare(t, p2, "<url>"+u+"</url>"); !equal16(first, again) {
		t.Fatal("play from disk cache differs")
	}
	if r, c, n := srv.counts(name); r != 3 || c != 2 || n != 2 {
		t.Fatalf("after restart: requests %d, conditional %d, 304 %d; want 3, 2, 2", r, c, n)
	}

	// The file changes: the conditional request gets the new file, which is played and cached.
	srv.set(name, file{body: fixture(t, "tone2k.mp3"), modTime: lastMod.Add(time.Hour)})
	changed := prepare(t, p2, "<url>"+u+"</url>")
	checkTone(t, changed, 2000, time.Second, 0.9)
	if r, c, n := srv.counts(name); r != 4 || c != 3 || n != 2 {
		t.Fatalf("after change: requests %d, conditional %d, 304 %d; want 4, 3, 2", r, c, n)
	}
	if again := prepare(t, p2, "<url>"+u+"</url>"); !equal16(changed, again) {
		t.Fatal("new version not cached")
	}
	if _, _, n := srv.counts(name); n != 3 {
		t.Fatalf("304s = %d, want 3", n)
	}

	// The server goes away: the cached copy still plays.
	srv.Close()
	if again := prepare(t, p2, "<url>"+u+"</url>"); !equal16(changed, again) {
		t.Fatal("cached copy not played when the server is down")
	}
}

func TestPrepareURLWithoutLastModified(t *testing.T) {
	srv := newFileServer(t)
	p := newTestPrompter(t, Options{CacheDir: t.TempDir()})
	srv.set("plain.wav", file{body: fixture(t, "pcm16-8k.wav")})
	for range 3 {
		prepare(t, p, "<url>"+srv.url("plain.wav")+"</url>")
	}
	if r, c, _ := srv.counts("plain.wav"); r != 3 || c != 0 {
		t.Fatalf("requests %d, conditional %d; want 3 full downloads", r, c)
	}
}

func TestPrepareURLConcurrentDownloadsOnce(t *testing.T) {
	srv := newFileServer(t)
	p := newTestPrompter(t, Options{})
	srv.set("slow.gsm", file{body: fixture(t, "tone.gsm"), delay: 300 * time.Millisecond})
	msg := "<url>" + srv.url("slow.gsm") + "</url>"
	var wg sync.WaitGroup
	results := make([][]int16, 10)
	for i := range results {
		wg.Go(func() { results[i] = prepare(t, p, msg) })
	}
	wg.Wait()
	for i := range results {
		if !equal16(results[0], results[i]) {
			t.Fatalf("result %d differs", i)
		}
	}
	if r, _, _ := srv.counts("slow.gsm"); r != 1 {
		t.Fatalf("%d downloads for 10 concurrent plays, want 1", r)
	}
}

func TestPrepareMixedMsg(t *testing.T) {
	needEspeak(t)
	srv := newFileServer(t)
	srv.set("rec-100.mp3", file{body: fixture(t, "mono-8k.mp3"), modTime: lastMod})
	p := newTestPrompter(t, Options{})
	// A signed recording link, as ivrd's own record_url and monitor_url look.
	rec := srv.url("rec-100.mp3") + "?Expires=1767225600&Signature=0a1b2c"
	hello := prepare(t, p, "Hello.")
	bonjour := prepare(t, p, `<speech language="fr">Bonjour.</speech>`)
	file := prepare(t, p, "<url>"+rec+"</url>")
	all := prepare(t, p, `Hello.<url>`+strings.ReplaceAll(rec, "&", "&amp;")+`</url> <speech language="fr">Bonjour.</speech>`)
	want := append(append(append([]int16{}, hello...), file...), bonjour...)
	if !equal16(all, want) {
		t.Fatalf("mixed msg: %d samples, want the %d of its parts in order", len(all), len(want))
	}
}
