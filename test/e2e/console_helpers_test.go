package e2e

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// consoleUser is someone using ivrd's console over HTTP, as a browser does: its own cookies,
// the CSRF token of the last page it loaded, redirects not followed.
type consoleUser struct {
	t    *testing.T
	base string // http://host:port
	c    *http.Client
	last string
}

func newConsoleUser(t *testing.T, p *ivrd) *consoleUser {
	jar, _ := cookiejar.New(nil)
	return &consoleUser{t: t, base: "http://" + p.http, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is one answer of the console.
type page struct {
	code     int
	location string
	body     string
}

func (u *consoleUser) get(path string) page {
	u.t.Helper()
	res, err := u.c.Get(u.base + path)
	return u.read(res, err)
}

func (u *consoleUser) post(path string, form url.Values) page {
	u.t.Helper()
	if m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(u.last); m != nil && form.Get("csrf") == "" {
		form.Set("csrf", m[1])
	}
	res, err := u.c.PostForm(u.base+path, form)
	return u.read(res, err)
}

func (u *consoleUser) read(res *http.Response, err error) page {
	u.t.Helper()
	if err != nil {
		u.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	u.last = string(b)
	return page{code: res.StatusCode, location: res.Header.Get("Location"), body: string(b)}
}

// signIn signs in with an app's credentials, or as the operator when appID is "".
func (u *consoleUser) signIn(appID, secret string) page {
	u.t.Helper()
	u.get("/console/login")
	f := url.Values{"mode": {"app"}, "app_id": {appID}, "access_token": {secret}}
	if appID == "" {
		f = url.Values{"mode": {"operator"}, "password": {secret}}
	}
	return u.post("/console/login", f)
}

// recordingLinks lists the console's audio URLs of the recordings on a page.
func recordingLinks(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<audio controls preload="metadata" src="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// firstStartCredentials reads the app credentials ivrd prints on its first start.
func firstStartCredentials(t *testing.T, out string) (appID, token string) {
	t.Helper()
	id := regexp.MustCompile(`app_id:\s+(\S+)`).FindStringSubmatch(out)
	tok := regexp.MustCompile(`access_token:\s+(\S+)`).FindStringSubmatch(out)
	if id == nil || tok == nil {
		t.Fatalf("no credentials printed:\n%s", out)
	}
	return id[1], tok[1]
}

// artifactDir is where a test keeps files for people to look at (screenshots): under
// $IVRD_ARTIFACTS when set, else the test's artifact directory (kept by go test -artifacts).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.ArtifactDir()
	if base := os.Getenv("IVRD_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("artifacts in %s", dir)
	return dir
}
