package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// newBrowser starts headless Chromium (Debian's chromium; the test is skipped without it) as
// root can run it, with nothing that reaches outside the machine, and an empty profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian package chromium: scripts/install-deps.sh test installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// browserDo runs actions, with a bound, failing the test on an error.
func browserDo(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// browserGet runs one action and returns its value, failing the test on an error.
func browserGet[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// evalJS evaluates a JavaScript expression in the page, awaiting a promise it returns.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return browserGet(t, ctx, expr, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitJS polls a JavaScript condition until it holds, or fails the test after d.
func waitJS(t *testing.T, ctx context.Context, what, cond string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(200 * time.Millisecond) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
			t.Fatalf("%s: not within %v (%v)\npage:\n%s", what, d, err, body)
		}
	}
}

// location is the page's URL.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browserGet(t, ctx, "location", chromedp.Location())
}

// screenshot keeps the whole page as dir/name.png.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := browserGet(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInBrowser drives the console in headless Chromium as an operator would: the
// console and the demo are not readable without signing in, a wrong password is refused;
// signed in, a real call (sipp, through the demo app) appears among the live calls with its
// block and its recording, and goes when it ends; its timeline shows its blocks and its
// notifications with their attempts; its recording plays (the audio element's clock
// advances) over a waveform drawn from the decoded audio, and is deleted (gone from the
// list, its URLs 404). Screenshots of each step are kept (artifactDir).
func TestConsoleInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	dir := artifactDir(t)
	const password = "correct horse battery staple"
	p := startIvrd(t, filepath.Join(t.TempDir(), "data"), "", "", "--console-password", password, "--demo-listen", "6s")
	base := "http://" + p.http
	if strings.Contains(p.logText(), password) {
		t.Fatal("the console password is in the log")
	}

	// Not readable without signing in: the console and the demo lead to the sign-in form.
	browserDo(t, ctx, "open the console", chromedp.Navigate(base+"/console/"))
	if u := location(t, ctx); !strings.HasPrefix(u, base+"/console/login") {
		t.Fatalf("console without signing in: at %s", u)
	}
	browserDo(t, ctx, "open the demo", chromedp.Navigate(base+"/demo/"))
	if u := location(t, ctx); u != base+"/console/login?next=%2Fconsole%2Fdemo" {
		t.Fatalf("demo without signing in: at %s", u)
	}
	screenshot(t, ctx, dir, "1-sign-in")

	// A wrong password is refused.
	browserDo(t, ctx, "wrong password", chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS("p.error")))
	msg := browserGet(t, ctx, "error", chromedp.Text(chromedp.CSS("p.error")))
	if msg != "Wrong password." || !strings.HasPrefix(location(t, ctx), base+"/console/login") {
		t.Fatalf("wrong password: %q at %s", msg, location(t, ctx))
	}
	screenshot(t, ctx, dir, "2-wrong-password")

	// The right one leads where the operator was going.
	browserDo(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")))
	waitJS(t, ctx, "signed in, on the demo page", `location.pathname === "/console/demo" && document.getElementById("demo-uri")`, 10*time.Second)

	// A live call appears, with its block and its recording, and goes when it ends.
	browserDo(t, ctx, "live calls", chromedp.Navigate(base+"/console/"))
	callCtx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tone := audio.SineWave(1000, 1500*time.Millisecond, 12000)
	call := peerCall(callCtx, t, testpeer.Call{Target: p.sip, Number: "100", From: "6511111111",
		Script: []testpeer.Step{testpeer.Pause(3 * time.Second), testpeer.SendAudio(tone)}, Timeout: 60 * time.Second})
	waitJS(t, ctx, "the call among the live calls, recorded", `(() => {
		const r = document.querySelector("#live tbody tr");
		return r && r.textContent.includes("6511111111") && r.cells[r.cells.length-1].textContent === "on" && r.cells[r.cells.length-3].textContent !== "—";
	})()`, 30*time.Second)
	sid := evalJS[string](t, ctx, `document.querySelector("#live tbody tr").dataset.session`)
	screenshot(t, ctx, dir, "3-live-call")
	res := <-call
	if !res.Answered || !res.ByeFromServer {
		t.Fatalf("demo call: answered=%v bye=%v", res.Answered, res.ByeFromServer)
	}
	waitJS(t, ctx, "the call gone from the live calls", `document.querySelectorAll("#live tbody tr").length === 0 && !document.getElementById("live-empty").hidden`, 20*time.Second)
	screenshot(t, ctx, dir, "4-call-ended")

	// Its timeline: the blocks, and the notifications with their attempts, the last one the
	// Monitor's with the recording's URL.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		browserDo(t, ctx, "timeline", chromedp.Navigate(base+"/console/sessions/"+sid))
		if evalJS[bool](t, ctx, `[...document.querySelectorAll("tr.note")].some(r => r.dataset.state === "delivered" && r.textContent.includes("monitor (ended)"))`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Monitor's notification is not delivered in the timeline")
		}
	}
	blocks := evalJS[string](t, ctx, `[...document.querySelectorAll("tr.block")].map(r => r.dataset.block + ":" + r.querySelector(".status").textContent.trim()).join(" ")`)
	notes := evalJS[string](t, ctx, `[...document.querySelectorAll("tr.note")].map(r => r.querySelector("strong").textContent + "=" + [...r.querySelectorAll("li.attempt")].map(a => a.dataset.code).join(",")).join(" ")`)
	if !strings.HasPrefix(blocks, "monitor:done, call_state=ongoing") || !strings.Contains(blocks, "play:done") || !strings.Contains(blocks, "hangup:done, call_state=ended") {
		t.Errorf("blocks in the timeline: %s", blocks)
	}
	if notes != "answer=200 monitor=200 play=200 hangup=200 monitor=200" {
		t.Errorf("notifications and their attempts' HTTP statuses: %s", notes)
	}
	monitorURL := evalJS[string](t, ctx, `[...document.querySelectorAll("dt")].filter(d => d.textContent === "monitor_url").map(d => d.nextElementSibling.textContent)[0] || ""`)
	if !strings.Contains(monitorURL, "/recordings/rec-") {
		t.Fatalf("monitor_url in the timeline: %q", monitorURL)
	}
	screenshot(t, ctx, dir, "5-timeline")

	// The recording plays over its waveform (the caller's tone is in it).
	browserDo(t, ctx, "recordings", chromedp.Navigate(base+"/console/recordings"))
	waitJS(t, ctx, "the waveform drawn", `document.querySelector("canvas.wave").dataset.drawn === "yes"`, 20*time.Second)
	peak := evalJS[float64](t, ctx, `parseFloat(document.querySelector("canvas.wave").dataset.peak)`)
	if peak < 0.2 {
		t.Errorf("waveform peak %.3f: the caller's tone (0.37 full scale) is not in it", peak)
	}
	evalJS[bool](t, ctx, `document.querySelector("audio").play().then(() => true)`)
	waitJS(t, ctx, "the audio element playing", `document.querySelector("audio").currentTime > 1`, 15*time.Second)
	screenshot(t, ctx, dir, "6-recording")
	audioURL := evalJS[string](t, ctx, `document.querySelector("audio").src`)
	if code, _ := download(t, monitorURL); code != 200 {
		t.Fatalf("monitor_url before the delete: %d", code)
	}

	// Deleted: gone from the list; its URLs answer 404.
	evalJS[bool](t, ctx, `(window.confirm = () => true, true)`)
	browserDo(t, ctx, "delete", chromedp.Click(chromedp.CSS("form.delete button")))
	waitJS(t, ctx, "the recording gone from the list", `location.pathname === "/console/recordings" && document.querySelectorAll("li.rec").length === 0`, 10*time.Second)
	screenshot(t, ctx, dir, "7-deleted")
	if status := evalJS[int](t, ctx, fmt.Sprintf(`fetch(%q).then(r => r.status)`, audioURL)); status != 404 {
		t.Errorf("the console's URL of the deleted recording: %d", status)
	}
	if code, _ := download(t, monitorURL); code != 404 {
		t.Errorf("monitor_url of the deleted recording: %d", code)
	}

	// Signed out, the console is not readable again.
	browserDo(t, ctx, "sign out", chromedp.Click(chromedp.CSS("form.who button")))
	waitJS(t, ctx, "signed out", `location.pathname === "/console/login"`, 10*time.Second)
	browserDo(t, ctx, "console after signing out", chromedp.Navigate(base+"/console/sessions/"+sid))
	if u := location(t, ctx); !strings.HasPrefix(u, base+"/console/login") {
		t.Fatalf("after signing out: at %s", u)
	}
}
