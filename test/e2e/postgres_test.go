package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/store"
	"github.com/ivrd/ivrd/internal/testpg"
)

// onPostgres makes every ivrd the test starts, serve and admin commands, keep its metadata in a
// fresh PostgreSQL database (IVRD_STORE) and returns its URL. When the test ends it checks that
// the database was used: the test's app is there.
func onPostgres(t *testing.T) string {
	t.Helper()
	dsn := testpg.DSN(t)
	t.Setenv(config.EnvName("store"), dsn)
	t.Cleanup(func() { // after ivrd has stopped
		if t.Failed() {
			return
		}
		st, err := store.OpenPostgres(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if apps, err := st.Apps(); err != nil || len(apps) == 0 {
			t.Fatalf("PostgreSQL holds %d apps (%v): ivrd did not use it", len(apps), err)
		}
	})
	return dsn
}

// The seed's monitored call, on ivrd serve --store postgres://….
func TestMonitorCallEndToEndPostgres(t *testing.T) {
	onPostgres(t)
	TestMonitorCallEndToEnd(t)
}

// ivrd SIGKILLed mid-call on PostgreSQL: the next start finds its session there and settles it.
func TestMonitorSurvivesSIGKILLPostgres(t *testing.T) {
	onPostgres(t)
	TestMonitorSurvivesSIGKILL(t)
}

// TestPostgresRestartDuringCalls: PostgreSQL is restarted while monitored calls play a prompt,
// then stopped while their callers hang up, and started again: every call's notifications
// (answer, monitor started, play ended, monitor ended with a recording of the prompt) arrive,
// each delivered once.
func TestPostgresRestartDuringCalls(t *testing.T) {
	dsn := onPostgres(t)
	const calls = 4
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	rcv := newFlakyReceiver(t, a) // never failing: it logs every attempt
	const pgNumber = "+6561230001"
	ivrdCmd(t, "number", "add", "--data", data, "--app", a.id, "--number", pgNumber, "--notify-url", rcv.url("/answer"))
	p := startIvrd(t, data, "", "")
	a.ivrd = "http://" + p.http
	var mu sync.Mutex
	recordings := map[string]string{} // session → monitor_url
	results, driverErrs := monitoredPlays(t, a, p, rcv, pgNumber, calls, 9*time.Second, func(n note) {
		if n.path == "/monitor" && n.params.Get("call_state") == "ended" {
			mu.Lock()
			recordings[n.params.Get("session")] = n.params.Get("monitor_url")
			mu.Unlock()
		}
	})
	time.Sleep(500 * time.Millisecond)
	testpg.Restart(t) // every connection of ivrd is dropped under live calls
	time.Sleep(time.Second)
	testpg.Halt(t)
	halted := time.Now()
	var byes []time.Time
	for _, rc := range results { // the callers hang up while the database is down
		res := <-rc
		if !res.Answered {
			t.Fatalf("a call was not answered: %d", res.Status)
		}
		byes = append(byes, res.ByeAt)
	}
	time.Sleep(2 * time.Second)
	testpg.Resume(t)
	resumed := time.Now()
	for _, bye := range byes {
		if bye.Before(halted) || bye.After(resumed) {
			t.Fatalf("a caller hung up at %v, outside the outage (%v to %v)", bye, halted, resumed)
		}
	}

	want := []string{"answer/ringing", "monitor/ongoing", "play/ended", "monitor/ended"}
	bySession := waitNotified(t, rcv, calls, want, 60*time.Second, "of PostgreSQL's return")
	var last time.Time
	var wg sync.WaitGroup
	for sid, all := range bySession {
		got := map[string][]attempt{}
		for _, at := range all {
			got[at.key()] = append(got[at.key()], at)
		}
		for _, k := range want {
			atts := got[k]
			if len(atts) != 1 || atts[0].code != 200 {
				t.Errorf("%s: %s attempted %d times: %+v", sid, k, len(atts), atts)
				continue
			}
			if atts[0].at.After(last) {
				last = atts[0].at
			}
		}
		// The recording holds the prompt up to the hang-up.
		wg.Go(func() {
			mu.Lock()
			murl := recordings[sid]
			mu.Unlock()
			if murl == "" {
				t.Errorf("%s: no monitor_url", sid)
				return
			}
			length, tone, ok := promptTone(t, sid, murl)
			if ok && (length < 6*time.Second || tone < length*6/10) {
				t.Errorf("%s: recording %v with %v of the prompt's tone", sid, length, tone)
			}
		})
	}
	wg.Wait()
	t.Logf("%d calls hung up while PostgreSQL was down (%v); their last notification came %v after it returned",
		calls, resumed.Sub(halted).Round(100*time.Millisecond), last.Sub(resumed).Round(100*time.Millisecond))
	if errs := driverErrs(); len(errs) > 0 {
		t.Errorf("app requests failed: %v", errs)
	}
	st, err := store.OpenPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.CountOutbox(store.OutboxDelivered); err != nil || n != calls*len(want) {
		t.Fatalf("PostgreSQL's outbox holds %d delivered notifications (%v), want %d", n, err, calls*len(want))
	}
}

// promptTone downloads session sid's Monitor recording from murl, decodes it with ffmpeg and
// returns its length and how much of it holds monitoredPlays' 2 kHz prompt; ok is false (and the
// test failed) when it could not be downloaded.
func promptTone(t *testing.T, sid, murl string) (length, tone time.Duration, ok bool) {
	code, mp3 := download(t, murl)
	if code != 200 {
		t.Errorf("%s: download %s: HTTP %d", sid, murl, code)
		return 0, 0, false
	}
	pcm := decodeMP3(t, mp3)
	for _, s := range audio.ToneSpans(pcm, audio.Rate, 2000, 40*time.Millisecond, 0.5) {
		tone += s.Len()
	}
	return audio.Duration(len(pcm)), tone, true
}

// The admin commands against a running ivrd, both on PostgreSQL.
func TestAdminCommandsPostgres(t *testing.T) {
	onPostgres(t)
	TestAdminCommands(t)
}

// A bad --store is refused before anything starts, by serve and by the admin commands (from the
// environment without showing its password); --store on the command line is taken over
// IVRD_STORE.
func TestStoreSettingChecked(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		env  string
		args []string
	}{
		{"mysql://ivrd:secret@127.0.0.1/ivrd", []string{"serve", "--data", data}},
		{"postgres://ivrd:secret@127.0.0.1", []string{"app", "list", "--data", data}},
		{"", []string{"number", "list", "--data", data, "--store", "postgres://ivrd@127.0.0.1"}},
	} {
		cmd := exec.Command(ivrdBin, tc.args...)
		cmd.Env = append(os.Environ(), config.EnvName("store")+"="+tc.env)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(strings.ToLower(string(out)), "store") || strings.Contains(string(out), "secret") {
			t.Errorf("ivrd %v with IVRD_STORE=%q: %v: %s", tc.args, tc.env, err, out)
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("the data directory was created despite the bad setting")
	}
	dsn := onPostgres(t)
	t.Setenv(config.EnvName("store"), "postgres://nobody:secret@127.0.0.1:1/none?sslmode=disable")
	out, err := exec.Command(ivrdBin, "app", "create", "--data", data, "--name", "flag", "--store", dsn).CombinedOutput()
	if err != nil {
		t.Fatalf("app create --store: %v: %s", err, out)
	}
	t.Setenv(config.EnvName("store"), dsn)
	if rows := jsonLines(t, ivrdCmd(t, "app", "list", "--data", data)); len(rows) != 1 || rows[0]["name"] != "flag" {
		t.Fatalf("apps in PostgreSQL: %v", rows)
	}
	if _, err := os.Stat(filepath.Join(data, "ivrd.db")); err == nil {
		t.Fatal("an SQLite database was created beside PostgreSQL")
	}
}
