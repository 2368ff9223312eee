package prompt

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixture files are one-second 1 kHz tones made by real tools (sox, lame).
var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
)

// fixtureRecipes: file name -> commands (run in the fixture dir) that make it.
var fixtureRecipes = []struct {
	name string
	cmds [][]string
}{
	{"pcm16-8k.wav", [][]string{{"sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "pcm16-8k.wav", "synth", "1", "sine", "1000", "vol", "0.5"}}},
	{"pcm24-44k-stereo.wav", [][]string{{"sox", "-n", "-r", "44100", "-c", "2", "-b", "24", "pcm24-44k-stereo.wav", "synth", "1", "sine", "1000", "vol", "0.5"}}},
	{"u8-11k.wav", [][]string{{"sox", "-n", "-r", "11025", "-c", "1", "-b", "8", "-e", "unsigned", "u8-11k.wav", "synth", "1", "sine", "1000", "vol", "0.5"}}},
	{"ulaw-8k.wav", [][]string{{"sox", "-n", "-r", "8000", "-c", "1", "-e", "mu-law", "ulaw-8k.wav", "synth", "1", "sine", "1000", "vol", "0.5"}}},
	{"alaw-8k.wav", [][]string{{"sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "alaw-8k.wav", "synth", "1", "sine", "1000", "vol", "0.5"}}},
	{"gsm-in.wav", [][]string{{"sox", "-n", "-r", "8000", "-c", "1", "-e", "gsm-full-rate", "gsm-in.wav", "synth", "1", "sine", "1000", "vol", "0.5"}}},
	{"tone.gsm", [][]string{{"sox", "-n", "-r", "8000", "-c", "1", "tone.gsm", "synth", "1", "sine", "1000", "vol", "0.5"}}},
	{"mono-8k.mp3", [][]string{{"lame", "--quiet", "-b", "16", "pcm16-8k.wav", "mono-8k.mp3"}}},
	{"stereo-44k.mp3", [][]string{{"lame", "--quiet", "-b", "128", "pcm24-44k-stereo.wav", "stereo-44k.mp3"}}},
	{"tone2k.mp3", [][]string{
		{"sox", "-n", "-r", "16000", "-c", "1", "-b", "16", "tone2k.wav", "synth", "1", "sine", "2000", "vol", "0.5"},
		{"lame", "--quiet", "-b", "32", "tone2k.wav", "tone2k.mp3"}}},
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// fixture returns the bytes of a fixture file, making all of them on first use.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	fixtureOnce.Do(func() {
		for _, tool := range []string{"sox", "lame"} {
			if _, err := exec.LookPath(tool); err != nil {
				fixtureErr = fmt.Errorf("%s not installed", tool)
				return
			}
		}
		fixtureDir, fixtureErr = os.MkdirTemp("", "prompt-fixtures-")
		if fixtureErr != nil {
			return
		}
		for _, r := range fixtureRecipes {
			for _, c := range r.cmds {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				cmd := exec.CommandContext(ctx, c[0], c[1:]...)
				cmd.Dir = fixtureDir
				out, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					fixtureErr = fmt.Errorf("%v: %v: %s", c, err, out)
					return
				}
			}
		}
	})
	if fixtureErr != nil {
		t.Skip(fixtureErr)
	}
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// file is what the test server serves at a path.
type file struct {
	body    []byte
	modTime time.Time     // zero: no Last-Modified
	delay   time.Duration // before the response headers
	stall   time.Duration // after half the body
	trickle time.Duration // between 1 KiB chunks (no Content-Length)
	chunked bool          // stream without Content-Length
	status  int           // non-zero: reply with this status and no body
}

// fileServer is a real HTTP server (loopback) that counts what it is asked.
type fileServer struct {
	*httptest.Server
	mu          sync.Mutex
	files       map[string]file
	requests    map[string]int
	conditional map[string]int // requests carrying If-Modified-Since
	notModified map[string]int // 304 answers
}

func newFileServer(t *testing.T) *fileServer { return newFileServerOn(t, "127.0.0.1:0") }

// newFileServerOn is newFileServer listening on addr. Besides /files/ and /redirect/ it
// serves /to/<name>?url=U, a redirect to U.
func newFileServerOn(t *testing.T, addr string) *fileServer {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s := &fileServer{files: map[string]file{}, requests: map[string]int{},
		conditional: map[string]int{}, notModified: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect/{n}/{name}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		target := "/files/" + r.PathValue("name")
		if n > 1 {
			target = fmt.Sprintf("/redirect/%d/%s", n-1, r.PathValue("name"))
		}
		http.Redirect(w, r, target, http.StatusFound)
	})
	mux.HandleFunc("/ftp-redirect.mp3", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://example.com/a.mp3", http.StatusFound)
	})
	mux.HandleFunc("/to/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("url"), http.StatusFound)
	})
	mux.HandleFunc("/files/", s.serve)
	s.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *fileServer) set(name string, f file) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = f
}

func (s *fileServer) url(name string) string { return s.URL + "/files/" + name }

func (s *fileServer) counts(name string) (requests, conditional, notModified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[name], s.conditional[name], s.notModified[name]
}

func (s *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/files/")
	s.mu.Lock()
	f, ok := s.files[name]
	s.requests[name]++
	if r.Header.Get("If-Modified-Since") != "" {
		s.conditional[name]++
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if f.delay > 0 {
		sleepCtx(r.Context(), f.delay)
	}
	switch {
	case f.status != 0:
		w.WriteHeader(f.status)
	case f.stall > 0:
		w.Header().Set("Content-Length", fmt.Sprint(len(f.body)))
		w.Write(f.body[:len(f.body)/2])
		w.(http.Flusher).Flush()
		sleepCtx(r.Context(), f.stall)
		w.Write(f.body[len(f.body)/2:])
	case f.chunked || f.trickle > 0:
		for off := 0; off < len(f.body) && r.Context().Err() == nil; off += 1024 {
			w.Write(f.body[off:min(off+1024, len(f.body))])
			w.(http.Flusher).Flush()
			if f.trickle > 0 {
				sleepCtx(r.Context(), f.trickle)
			}
		}
	default:
		rec := &statusRecorder{ResponseWriter: w}
		http.ServeContent(rec, r, name, f.modTime, bytes.NewReader(f.body))
		if rec.status == http.StatusNotModified {
			s.mu.Lock()
			s.notModified[name]++
			s.mu.Unlock()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
