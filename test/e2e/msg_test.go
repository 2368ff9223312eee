package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// fileServer serves a 1 s 2 kHz WAV with Last-Modified (answering If-Modified-Since with 304)
// and counts requests; /to/<name>?url=U redirects to U.
type fileServer struct {
	*httptest.Server
	full, notModified, requests atomic.Int32
}

func newFileServer(t *testing.T) *fileServer { return newFileServerOn(t, "127.0.0.1:0") }

// newFileServerOn is newFileServer listening on addr (e.g. "127.0.0.2:0").
func newFileServerOn(t *testing.T, addr string) *fileServer {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	tone16k, err := audio.Resample(audio.SineWave(2000, time.Second, 12000), audio.Rate, 16000)
	if err != nil {
		t.Fatal(err)
	}
	wav := audio.EncodeWAV(tone16k, 16000) // served at 16 kHz: ivrd resamples
	mod := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fs := &fileServer{}
	fs.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.requests.Add(1)
		if strings.HasPrefix(r.URL.Path, "/to/") {
			http.Redirect(w, r, r.URL.Query().Get("url"), http.StatusFound)
			return
		}
		switch r.URL.Path {
		case "/tone.wav":
			if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !mod.After(ims) {
				fs.notModified.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			fs.full.Add(1)
			w.Header().Set("Last-Modified", mod.Format(http.TimeFormat))
			w.Header().Set("Content-Type", "audio/wav")
			w.Write(wav)
		case "/page.mp3":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html><body>not audio</body></html>"))
		default:
			http.NotFound(w, r)
		}
	})}}
	fs.Start()
	t.Cleanup(fs.Close)
	return fs
}

// TestMsgMarkupOnACall: speech markup and a <url> file play on a real call, the Monitor
// recording holds the file's tone where it was played, the second play revalidates the cached
// file (304), and msg errors come back with their exact statuses through HTTP.
func TestMsgMarkupOnACall(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "")
	a.ivrd = "http://" + p.http
	files := newFileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resc := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), Timeout: 40 * time.Second})

	sid := a.next(15 * time.Second).params.Get("session")
	if st := a.call("middle/monitor", url.Values{"session": {sid}, "notify_url": {a.url("/monitor")}}); st != "success_ok" {
		t.Fatal(st)
	}
	tRec := a.next(15 * time.Second).at

	// Errors, each with its status, and the session stays usable.
	for msg, want := range map[string]string{
		`<speech language="xx-YY">hi</speech>`:                 "error_msg_invalid_language",
		`<speech gender="robot">hi</speech>`:                   "error_msg_invalid_gender",
		`<speech language="en">unclosed`:                       "error_msg_invalid_xml",
		`<url>ftp://example.com/a.mp3</url>`:                   "error_msg_invalid_url",
		`<url>` + files.URL + `/missing.mp3</url>`:             "error_msg_download_failed",
		`<url>` + files.URL + `/page.mp3</url>`:                "error_msg_invalid_file_format",
		strings.Repeat("a", 1001):                              "error_msg_invalid_length",
		`<speech language="zh-CN">你好</speech><bogus/>`:         "error_msg_invalid_xml",
		`<url>` + files.URL + `/tone.wav</url><url>x</url>`:    "error_msg_invalid_url",
		`<speech language="zh-hk" gender="MALE">早晨</speech>`:   "success_ok",
		`<url>` + files.URL + `/tone.wav</url> and &amp; more`: "success_ok",
	} {
		if st := a.call("middle/play", url.Values{"session": {sid}, "msg": {msg}, "notify_url": {a.url("/play")}}); st != want {
			t.Fatalf("msg %.60q: %s, want %s", msg, st, want)
		}
		if want == "success_ok" {
			a.next(15 * time.Second)
		}
	}
	if files.full.Load() != 1 {
		t.Fatalf("tone.wav downloaded %d times before the timed play, want 1", files.full.Load())
	}

	// The timed play: the cached file, revalidated, plays first.
	tPlay := time.Now()
	if st := a.call("middle/play", url.Values{"session": {sid}, "msg": {`<url>` + files.URL + `/tone.wav</url><speech language="ms">terima kasih</speech>`}, "notify_url": {a.url("/play")}}); st != "success_ok" {
		t.Fatal(st)
	}
	a.next(15 * time.Second)
	if files.full.Load() != 1 || files.notModified.Load() < 1 {
		t.Fatalf("downloads %d, 304s %d: want the cached copy revalidated", files.full.Load(), files.notModified.Load())
	}
	if st := a.call("end/hangup", url.Values{"session": {sid}, "notify_url": {a.url("/hangup")}}); st != "success_ok" {
		t.Fatal(st)
	}
	var murl string
	for i := 0; i < 2; i++ {
		if n := a.next(15 * time.Second); n.params.Get("monitor_url") != "" {
			murl = n.params.Get("monitor_url")
		}
	}
	<-resc
	code, mp3 := download(t, murl)
	if code != 200 {
		t.Fatal(code)
	}
	pcm := decodeMP3(t, mp3)
	spans := audio.ToneSpans(pcm, audio.Rate, 2000, 40*time.Millisecond, 0.5)
	if len(spans) < 2 {
		t.Fatalf("2 kHz spans %v: want the url file twice", spans)
	}
	last := spans[len(spans)-1]
	if want := tPlay.Sub(tRec); !near(last.Start, want, 300*time.Millisecond) || !near(last.Len(), time.Second, 150*time.Millisecond) {
		t.Fatalf("url tone at %v for %v, want at %v for 1 s", last.Start, last.Len(), want)
	}
	if r := rmsBetween(pcm, last.End+100*time.Millisecond, last.End+600*time.Millisecond); r < 300 {
		t.Fatalf("Malay speech after the tone missing: RMS %.0f", r)
	}

	// The language table endpoint.
	res, err := http.Get(a.ivrd + "/open/ivr/languages")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		Languages []struct{ Code string } `json:"languages"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil || len(doc.Languages) < 20 {
		t.Fatalf("languages: %v %d", err, len(doc.Languages))
	}
}
