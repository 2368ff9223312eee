package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/recording"
)

// extFixture is the API with its extensions over real parts: the engine, a recordings catalog
// (its index in memory: the store's is tested with the database in internal/server), a blob
// store on disk served by its handler at /recordings/.
type extFixture struct {
	*fixture
	idx     *recording.MemIndex
	catalog *recording.Catalog
	blobs   *blob.Local
}

// zone is the configured time zone of the extension tests: dates are given in GMT+8.
var zone = time.FixedZone("GMT+8", 8*3600)

func newExtFixture(t *testing.T) *extFixture {
	t.Helper()
	idx := &recording.MemIndex{}
	blobs := &blob.Local{Dir: t.TempDir()}
	signer := blob.Signer{Secret: []byte("0123456789abcdef0123456789abcdef")}
	cat, err := recording.NewCatalog(recording.CatalogConfig{Index: idx, Blobs: blobs, Signer: &signer})
	if err != nil {
		t.Fatal(err)
	}
	n := notifier{ch: make(chan url.Values, 1000)}
	e := ivr.New(ivr.Config{}, ivr.Deps{Prompter: prompter{}, Recorders: recorders{}, Notifier: n, Resolver: resolver{}})
	f := newFixtureWith(t, e, n, func(h *Handler, mux *http.ServeMux) {
		h.Monitors, h.Recordings, h.Zone = e, cat, zone
		mux.Handle(blob.PathPrefix, blob.Handler(blobs, signer, slog.New(slog.DiscardHandler)))
	})
	signer.BaseURL = f.srv.URL
	return &extFixture{fixture: f, idx: idx, catalog: cat, blobs: blobs}
}

// put stores a recording of session of app, started at a GMT+8 date, with a file.
func (f *extFixture) put(t *testing.T, id, app, session, date string) {
	t.Helper()
	started, err := time.ParseInLocation(DateLayout, date, zone)
	if err != nil {
		t.Fatal(err)
	}
	f.idx.AddSession(session, app)
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("ID3 not really an mp3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.blobs.PutFile(id+".mp3", src); err != nil {
		t.Fatal(err)
	}
	if err := f.idx.Put(recording.Entry{ID: id, AppID: app, SessionID: session, Kind: recording.KindMonitor,
		Started: started, Duration: 61500 * time.Millisecond, Size: 21, Channels: 2, Key: id + ".mp3"}); err != nil {
		t.Fatal(err)
	}
}

// TestContractExtensions reaches every status of ivrd's extensions (spec §7) through HTTP, for
// every extension endpoint that can return it, in the order of checks of §1.
func TestContractExtensions(t *testing.T) {
	f := newExtFixture(t)
	cred := "app_id=A1&access_token=tok1"
	reached := map[string]bool{}
	check := func(t *testing.T, path, body, want string) map[string]any {
		t.Helper()
		got := f.answer(t, "/open/ivr/"+path, body)
		if got["status"] != want {
			t.Errorf("%s %s: got %v, want %s", path, body, got["status"], want)
		}
		reached[want] = true
		return got
	}
	f.put(t, "rec-1", "A1", "S1", "2026-03-01 10:00:00")
	f.put(t, "rec-2", "A1", "S1", "2026-03-01 11:00:00")
	f.put(t, "rec-3", "A1", "S2", "2026-03-02 09:30:00")
	f.put(t, "rec-9", "A2", "S9", "2026-03-01 10:30:00")
	monitored := func(t *testing.T) string { // a session whose Monitor recording runs
		sid, _ := f.session(t)
		check(t, "middle/monitor", cred+"&session="+sid+"&notify_url=http://app.test/m", ivr.StatusOK)
		waitFor(t, f.fixture, sid, "monitor") // the Monitor's notification: its recording runs
		return sid
	}

	// Every extension endpoint: the common statuses of §1, in their order.
	endpoints := map[string]string{ // path → valid parameters
		"monitor/pause":     "session={M}",
		"monitor/resume":    "session={M}",
		"recordings/list":   "",
		"recordings/get":    "id=rec-1",
		"recordings/delete": "id=rec-3",
	}
	for path, valid := range endpoints {
		t.Run(path, func(t *testing.T) {
			if strings.Contains(valid, "{M}") {
				valid = strings.ReplaceAll(valid, "{M}", monitored(t))
			}
			check(t, path, cred+"&"+valid, ivr.StatusOK)
			check(t, path, cred+"&junk=%zz&"+valid, ivr.StatusMalformedParams)
			check(t, path, "access_token=tok1&"+valid, ivr.Missing("app_id"))
			check(t, path, "app_id=A1&"+valid, ivr.Missing("access_token"))
			check(t, path, "app_id=A9&access_token=tok1&"+valid, ivr.StatusInvalidAppID)
			check(t, path, "app_id=A1&access_token=bad&"+valid, ivr.StatusInvalidAccessToken)
			check(t, path, "app_id=broken&access_token=x&"+valid, ivr.StatusInternal)
			req, _ := http.NewRequest(http.MethodDelete, f.srv.URL+"/open/ivr/"+path+"?"+cred+"&"+valid, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("DELETE: %v %v", res, err)
			}
			res.Body.Close()
			// GET works as POST does.
			res, err = http.Get(f.srv.URL + "/open/ivr/" + path + "?app_id=A1&access_token=bad")
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("GET: %v %v", res, err)
			}
			res.Body.Close()
		})
	}
	reached[ivr.StatusInvalidHTTPMethod] = true // the DELETEs above (their body is checked in TestExtensionsMethod)

	// monitor/pause and monitor/resume.
	for _, path := range []string{"monitor/pause", "monitor/resume"} {
		sid := monitored(t)
		plain, _ := f.session(t) // no Monitor
		check(t, path, cred, ivr.Missing("session"))
		check(t, path, cred+"&session=Snope", ivr.StatusInvalidSession)
		check(t, path, "app_id=A2&access_token=tok2&session="+sid, ivr.StatusSessionAccessDenied)
		check(t, path, cred+"&session="+sid+"&pause_behavior=mute", ivr.StatusInvalidPauseBehavior)
		check(t, path, cred+"&session="+plain+"&pause_behavior=mute", ivr.StatusInvalidPauseBehavior)
		check(t, path, cred+"&session="+plain, ivr.StatusMonitorNotInProgress)
		// Taken while a block runs, twice over (idempotent), either behaviour.
		check(t, "middle/play", cred+"&session="+sid+"&msg=slow&notify_url=http://app.test/p", ivr.StatusOK)
		check(t, path, cred+"&session="+sid+"&pause_behavior=skip", ivr.StatusOK)
		check(t, path, cred+"&session="+sid+"&pause_behavior=silence", ivr.StatusOK)
		rec, _ := f.e.Session(sid)
		paused := rec.Monitor != nil && rec.Monitor.Pause != nil
		if paused != (path == "monitor/pause") {
			t.Errorf("%s: Monitor %+v", path, rec.Monitor)
		}
		_ = f.e.Handle(t.Context(), "A1", "hangup", ivr.Params{"session": sid, "force": "enabled"})
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if r, _ := f.e.Session(sid); r.Phase == ivr.PhaseEnded {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		check(t, path, cred+"&session="+sid, ivr.StatusSessionEnded)
	}

	// recordings/list: filters, paging, and its own statuses in order.
	list := func(q string) []string {
		got := check(t, "recordings/list", cred+q, ivr.StatusOK)
		var ids []string
		for _, e := range got["entries"].([]any) {
			ids = append(ids, e.(map[string]any)["id"].(string))
		}
		return ids
	}
	for q, want := range map[string]string{
		"":                          "rec-2,rec-1", // rec-3 was deleted above
		"&session=S1":               "rec-2,rec-1",
		"&from=2026-03-01+10:30:00": "rec-2",
		"&to=2026-03-01+10:00:00":   "rec-1", // to the second, inclusive
		"&from=2026-03-01+10:00:00&to=2026-03-01+10:59:59": "rec-1",
		"&page_size=1":        "rec-2",
		"&page_size=1&page=2": "rec-1",
		"&page=2":             "",
	} {
		if got := strings.Join(list(q), ","); got != want {
			t.Errorf("list%s: %s, want %s", q, got, want)
		}
	}
	page := check(t, "recordings/list", cred+"&page_size=1&page=2", ivr.StatusOK)
	if page["total_entries_count"] != "2" || page["entries_count"] != "1" || page["page"] != "2" || page["page_size"] != "1" {
		t.Errorf("paging fields: %v", page)
	}
	e := page["entries"].([]any)[0].(map[string]any)
	want := map[string]any{"id": "rec-1", "session": "S1", "kind": "monitor", "date": "2026-03-01 10:00:00",
		"duration_ms": "61500", "size_bytes": "21", "channels": "dual"}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("entry %s = %v, want %v (%v)", k, e[k], v, e)
		}
	}
	if len(e) != len(want) {
		t.Errorf("entry fields %v", e)
	}
	for _, tc := range []struct{ q, want string }{
		{"&session=Snope", ivr.StatusInvalidSession},
		{"&session=S9", ivr.StatusSessionAccessDenied},
		{"&session=S9&from=bad", ivr.StatusSessionAccessDenied},
		{"&from=2026-03-01", ivr.StatusInvalidFrom},
		{"&from=2026-13-01+00:00:00", ivr.StatusInvalidFrom},
		{"&from=bad&to=bad", ivr.StatusInvalidFrom},
		{"&to=2026-03-01T10:00:00Z", ivr.StatusInvalidTo},
		{"&from=2026-03-02+00:00:00&to=2026-03-01+00:00:00", ivr.StatusInvalidTo},
		{"&to=bad&page=0", ivr.StatusInvalidTo},
		{"&page=0", ivr.StatusInvalidPage},
		{"&page=x&page_size=0", ivr.StatusInvalidPage},
		{"&page=1000001", ivr.StatusInvalidPage},
		{"&page_size=0", ivr.StatusInvalidPageSize},
		{"&page_size=101", ivr.StatusInvalidPageSize},
	} {
		check(t, "recordings/list", cred+tc.q, tc.want)
	}
	if got := check(t, "recordings/list", "app_id=A2&access_token=tok2", ivr.StatusOK); len(got["entries"].([]any)) != 1 {
		t.Errorf("A2 lists %v", got)
	}
	if got := check(t, "recordings/list", cred+"&from=2027-01-01+00:00:00", ivr.StatusOK); got["entries"] == nil || got["total_entries_count"] != "0" {
		t.Errorf("an empty list: %v", got) // entries is [], not absent
	}

	// recordings/get and recordings/delete.
	got := check(t, "recordings/get", cred+"&id=rec-1", ivr.StatusOK)
	u, _ := got["url"].(string)
	if !strings.HasPrefix(u, f.srv.URL+"/recordings/rec-1.mp3?Expires=") || got["date"] != "2026-03-01 10:00:00" || got["channels"] != "dual" {
		t.Fatalf("get: %v", got)
	}
	if code := httpGet(t, u); code != 200 {
		t.Fatalf("the fresh URL: HTTP %d", code)
	}
	for _, path := range []string{"recordings/get", "recordings/delete"} {
		check(t, path, cred, ivr.Missing("id"))
		check(t, path, cred+"&id=rec-nope", ivr.StatusRecordingNotFound)
		check(t, path, cred+"&id=rec-9", ivr.StatusSessionAccessDenied)
	}
	check(t, "recordings/delete", cred+"&id=rec-1", ivr.StatusOK)
	if code := httpGet(t, u); code != 404 {
		t.Fatalf("the URL of a deleted recording: HTTP %d, want 404", code)
	}
	check(t, "recordings/get", cred+"&id=rec-1", ivr.StatusRecordingNotFound)
	check(t, "recordings/delete", cred+"&id=rec-1", ivr.StatusRecordingNotFound)
	if _, err := f.idx.Get("rec-9"); err != nil {
		t.Fatalf("another app's recording was touched: %v", err)
	}

	// The channels parameter of Monitor and Record.
	for _, block := range []string{"middle/monitor", "middle/record"} {
		sid, _ := f.session(t)
		check(t, block, cred+"&session="+sid+"&notify_url=http://app.test/n&channels=stereo", ivr.StatusInvalidChannels)
		check(t, block, cred+"&session="+sid+"&notify_url=http://app.test/n&channels=dual&tag="+strings.Repeat("a", 257), ivr.StatusTagInvalidLength)
		check(t, block, cred+"&session="+sid+"&notify_url=http://app.test/n&channels=dual", ivr.StatusOK)
	}

	for _, st := range []string{ivr.StatusOK, ivr.StatusInvalidHTTPMethod, ivr.StatusMalformedParams, ivr.StatusInvalidAccessToken,
		ivr.StatusInvalidAppID, ivr.StatusInternal, ivr.StatusInvalidSession, ivr.StatusSessionAccessDenied, ivr.StatusSessionEnded,
		ivr.Missing("session"), ivr.Missing("id"), ivr.StatusInvalidChannels, ivr.StatusInvalidPauseBehavior,
		ivr.StatusMonitorNotInProgress, ivr.StatusRecordingNotFound, ivr.StatusInvalidFrom, ivr.StatusInvalidTo,
		ivr.StatusInvalidPage, ivr.StatusInvalidPageSize} {
		if !reached[st] {
			t.Errorf("status %s never reached", st)
		}
	}
}

// TestExtensionsMethod: other methods than GET and POST get error_invalid_http_method, and an
// unknown extension path is 404 like an unknown block.
func TestExtensionsMethod(t *testing.T) {
	f := newExtFixture(t)
	for _, path := range []string{"monitor/pause", "recordings/list"} {
		req, _ := http.NewRequest(http.MethodPut, f.srv.URL+"/open/ivr/"+path+"?app_id=A1&access_token=tok1", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]string
		decodeJSON(t, res, &out)
		if res.StatusCode != 200 || out["status"] != ivr.StatusInvalidHTTPMethod {
			t.Errorf("PUT %s: %d %v", path, res.StatusCode, out)
		}
	}
	for _, path := range []string{"monitor/stop", "recordings/purge", "middle/pause"} {
		if code := httpGet(t, f.srv.URL+"/open/ivr/"+path+"?app_id=A1&access_token=tok1"); code != 404 {
			t.Errorf("%s: HTTP %d, want 404", path, code)
		}
	}
	// Without a catalog the recordings endpoints are not served, without Monitors the pause ones.
	plain := newFixture(t)
	for _, path := range []string{"recordings/list", "monitor/pause", "monitor/resume"} {
		if code := httpGet(t, plain.srv.URL+"/open/ivr/"+path+"?app_id=A1&access_token=tok1"); code != 404 {
			t.Errorf("%s on a handler without it: HTTP %d", path, code)
		}
	}
}

// FuzzParseList: recordings/list's parameters never panic; what passes is a sane query.
func FuzzParseList(f *testing.F) {
	f.Add("2026-03-01 10:00:00", "2026-03-02 10:00:00", "2", "50")
	f.Add("", "", "", "")
	f.Add("2026-02-30 25:61:61", "x", "-1", "1e3")
	f.Add("2026-03-02 10:00:00", "2026-03-01 10:00:00", "1000000", "100")
	f.Fuzz(func(t *testing.T, from, to, page, size string) {
		q, st := parseList(ivr.Params{"from": from, "to": to, "page": page, "page_size": size}, zone)
		if st != "" {
			switch st {
			case ivr.StatusInvalidFrom, ivr.StatusInvalidTo, ivr.StatusInvalidPage, ivr.StatusInvalidPageSize:
			default:
				t.Fatalf("status %s", st)
			}
			return
		}
		if q.page < 1 || q.pageSize < 1 || q.pageSize > MaxPageSize || q.filter.Offset != (q.page-1)*q.pageSize || q.filter.Offset < 0 {
			t.Fatalf("query %+v", q)
		}
		if !q.filter.From.IsZero() && !q.filter.To.IsZero() && !q.filter.From.Before(q.filter.To) {
			t.Fatalf("from %v not before to %v", q.filter.From, q.filter.To)
		}
	})
}

// httpGet GETs u and returns the HTTP status.
func httpGet(t *testing.T, u string) int {
	t.Helper()
	code, _ := getBody(t, u)
	return code
}

// getBody GETs u and returns the HTTP status and the body.
func getBody(t *testing.T, u string) (int, []byte) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func decodeJSON(t *testing.T, res *http.Response, v any) {
	t.Helper()
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestExtensionsRateLimit: the extensions count against the app's request rate with its
// blocks (--api-rate), after the credentials: over it they answer error_rate_limit_exceeded.
func TestExtensionsRateLimit(t *testing.T) {
	f := newExtFixture(t)
	h := &Handler{Engine: f.e, Monitors: f.e, Recordings: f.catalog, Apps: func(id string) (string, error) { return "tok1", nil },
		Limit: NewLimiter(RateLimit{Rate: 0.001, Burst: 2, Log: slog.New(slog.DiscardHandler)})}
	defer h.Limit.Close()
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(validating(t, mux))
	defer srv.Close()
	lf := &fixture{srv: srv}
	for i, tc := range []struct{ path, token, want string }{
		{"monitor/pause", "bad", ivr.StatusInvalidAccessToken}, // not counted
		{"monitor/pause", "tok1", ivr.StatusInvalidSession},
		{"middle/play", "tok1", ivr.StatusInvalidSession},
		{"recordings/get", "tok1", ivr.StatusRateLimitExceeded},
		{"monitor/resume", "tok1", ivr.StatusRateLimitExceeded},
	} {
		if got := lf.post(t, "/open/ivr/"+tc.path, "app_id=A1&access_token="+tc.token+"&session=Snope&id=rec-x"); got != tc.want {
			t.Errorf("request %d (%s): %s, want %s", i, tc.path, got, tc.want)
		}
	}
}
