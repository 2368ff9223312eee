package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
)

// apiResult compares the Monitor request path of ivrd with a bare net/http handler.
type apiResult struct {
	Status        string    `json:"ivrd_status"` // what ivrd answered the benchmarked request
	Connections   int       `json:"connections"`
	Seconds       float64   `json:"seconds_per_run"`
	IvrdRPS       []float64 `json:"ivrd_rps"`
	BaselineRPS   []float64 `json:"baseline_rps"`
	IvrdMean      float64   `json:"ivrd_rps_mean"`
	BaselineMean  float64   `json:"baseline_rps_mean"`
	Ratio         float64   `json:"ratio"`
	IvrdP99ms     float64   `json:"ivrd_p99_ms"`
	BaselineP99ms float64   `json:"baseline_p99_ms"`
	Errors        int       `json:"errors"` // non-2xx responses and socket errors, all runs
}

// apiPhase: one call is up with its Monitor recording (the app does nothing more), and wrk
// POSTs a complete Monitor request for that session as fast as it can: decoding, credentials,
// session lookup, the block's parameter checks, its state check (error_monitor_in_progress:
// one call cannot start thousands of recordings) and the JSON answer. The baseline is a
// minimal net/http handler in its own process that parses the same form and answers the same
// JSON. Runs alternate baseline, ivrd, three times each.
func apiPhase(ctx context.Context, o options, bin, work string) (apiResult, error) {
	res := apiResult{Connections: o.apiConns, Seconds: o.apiDuration.Seconds()}
	dir := filepath.Join(work, "api")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	call, err := newOneCall(o.monitorMsg)
	if err != nil {
		return res, err
	}
	defer call.close()
	p, err := newIvrd(bin, dir, call.app.answerURL(), true, nil)
	if err != nil {
		return res, err
	}
	defer p.stop()
	body, err := call.start(ctx, p, dir, 4*o.apiDuration+90*time.Second)
	if err != nil {
		return res, fmt.Errorf("api: %w", err)
	}
	ivrdURL := "http://" + p.http + monitorPath
	st, err := postStatus(ivrdURL, body)
	if err != nil {
		return res, err
	}
	res.Status = st
	if st != ivr.StatusMonitorInProgress {
		return res, fmt.Errorf("api: ivrd answered %q to the benchmarked request", st)
	}

	// The baseline, in its own process like ivrd.
	baseAddr, err := freeTCP()
	if err != nil {
		return res, err
	}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	base := exec.CommandContext(ctx, self, "baseline-http", "-addr", baseAddr)
	base.Stdout, base.Stderr = os.Stderr, os.Stderr
	if err := base.Start(); err != nil {
		return res, err
	}
	defer func() { _ = base.Process.Kill(); _ = base.Wait() }()
	baseURL := "http://" + baseAddr + monitorPath
	for i := 0; ; i++ {
		if _, err := postStatus(baseURL, body); err == nil {
			break
		}
		if i > 100 {
			return res, fmt.Errorf("api: baseline server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}

	script, err := wrkPostScript(dir, body)
	if err != nil {
		return res, err
	}
	var ivrdP99, baseP99 []float64
	for round := range 3 {
		for _, target := range []string{"baseline", "ivrd"} {
			u := baseURL
			if target == "ivrd" {
				u = ivrdURL
			}
			var prof chan error
			if target == "ivrd" && round == 2 {
				// Profile ivrd's API path during its last run.
				prof = make(chan error, 1)
				go func() {
					secs := max(int(o.apiDuration/time.Second)-2, 1)
					time.Sleep(time.Second)
					prof <- p.fetchProfile(ctx, fmt.Sprintf("profile?seconds=%d", secs), filepath.Join(o.out, "api-cpu.pprof"))
				}()
			}
			w, err := runWrk(ctx, script, u, o.apiConns, o.apiDuration)
			if err != nil {
				return res, err
			}
			if prof != nil {
				if err := <-prof; err != nil {
					log.Printf("api: profile: %v", err)
				}
			}
			log.Printf("api: round %d %s: %.0f req/s, p99 %.2f ms, errors %d", round+1, target, w.rps, w.p99ms, w.errors)
			res.Errors += w.errors
			if target == "ivrd" {
				res.IvrdRPS = append(res.IvrdRPS, w.rps)
				ivrdP99 = append(ivrdP99, w.p99ms)
			} else {
				res.BaselineRPS = append(res.BaselineRPS, w.rps)
				baseP99 = append(baseP99, w.p99ms)
			}
		}
	}
	res.IvrdMean, res.BaselineMean = mean(res.IvrdRPS), mean(res.BaselineRPS)
	res.IvrdP99ms, res.BaselineP99ms = mean(ivrdP99), mean(baseP99)
	if res.BaselineMean > 0 {
		res.Ratio = res.IvrdMean / res.BaselineMean
	}
	// The session must still be there and unharmed.
	if st, err := postStatus(ivrdURL, body); err != nil || st != ivr.StatusMonitorInProgress {
		return res, fmt.Errorf("api: after the runs ivrd answered %q, %v", st, err)
	}
	return res, nil
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// monitorPath is the API path of the benchmarked request.
const monitorPath = "/open/ivr/middle/monitor"

// oneCall is one monitored call kept up on an ivrd while an API phase sends requests for its
// session: the callee's RTP sink, the app (which starts Monitor and nothing more) and the
// caller (sipp).
type oneCall struct {
	rtp        *rtpSet
	app        *app
	monitorMsg string
	stopSipp   context.CancelFunc
}

func newOneCall(monitorMsg string) (*oneCall, error) {
	rtp, err := newRTPSet()
	if err != nil {
		return nil, err
	}
	a, err := newApp(monitorMsg, "", false)
	if err != nil {
		rtp.close()
		return nil, err
	}
	return &oneCall{rtp: rtp, app: a, monitorMsg: monitorMsg, stopSipp: func() {}}, nil
}

// start places the call to p (sipp, until close or hold has passed), with the app driving it
// through p's API, waits until Monitor records it, and returns the body of a complete Monitor
// request for its session: credentials, session, msg, tag, notify_url. ivrd answers it
// error_monitor_in_progress (one call cannot start thousands of recordings), so it can be
// sent any number of times.
func (c *oneCall) start(ctx context.Context, p *ivrd, dir string, hold time.Duration) (string, error) {
	c.app.connect("http://"+p.http, p.appID, p.token)
	ctx, c.stopSipp = context.WithCancel(ctx)
	if _, err := startSipp(ctx, filepath.Join(dir, "sipp"), p.sip, 1, 1, hold, c.rtp.port); err != nil {
		return "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.app.monitoring.Load() < 1 {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the call did not start recording: %s", p.logTail(10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var sid string
	for s := range c.app.snapshot() {
		sid = s
	}
	form := url.Values{"app_id": {p.appID}, "access_token": {p.token}, "session": {sid},
		"msg": {c.monitorMsg}, "tag": {"bench"}, "notify_url": {c.app.self + "/n"}}
	return form.Encode(), nil
}

// close ends the call (sipp is stopped) and the app.
func (c *oneCall) close() {
	c.stopSipp()
	c.app.close()
	c.rtp.close()
}

// wrkPostScript writes the wrk script that POSTs body as a form, and returns its path.
func wrkPostScript(dir, body string) (string, error) {
	script := filepath.Join(dir, "post.lua")
	lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n", body)
	return script, os.WriteFile(script, []byte(lua), 0o644)
}

func postStatus(u, body string) (string, error) {
	res, err := http.Post(u, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return "", err
	}
	return out["status"], nil
}

type wrkResult struct {
	rps    float64
	p50ms  float64
	p99ms  float64
	errors int
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reP50     = regexp.MustCompile(`\s50%\s+([0-9.]+)(us|ms|s)\b`)
	reP99     = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)\b`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func runWrk(ctx context.Context, script, u string, conns int, d time.Duration) (wrkResult, error) {
	threads := min(numCPU(), conns)
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(int(d/time.Second))+"s", "--latency", "-s", script, u)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	return parseWrk(string(out))
}

// parseWrk reads wrk's report (run with --latency): requests per second, the 50th and 99th
// percentile latencies of its latency distribution, and the errors (non-2xx answers and
// socket errors).
func parseWrk(s string) (wrkResult, error) {
	var r wrkResult
	m := reRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk output without Requests/sec: %s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	r.p50ms = wrkMillis(reP50.FindStringSubmatch(s))
	r.p99ms = wrkMillis(reP99.FindStringSubmatch(s))
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.errors += n
	}
	if m := reSockErr.FindStringSubmatch(s); m != nil {
		for _, x := range m[1:] {
			n, _ := strconv.Atoi(x)
			r.errors += n
		}
	}
	return r, nil
}

// wrkMillis is a latency wrk printed (a match of reP50 or reP99: value, unit) in milliseconds;
// 0 without a match.
func wrkMillis(m []string) float64 {
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	switch m[2] {
	case "us":
		v /= 1000
	case "s":
		v *= 1000
	}
	return v
}

// baselineServer is the bare net/http handler ivrd's API is compared with: the same route
// pattern, form parsing and JSON answer, and nothing else.
func baselineServer(args []string) {
	fs := flag.NewFlagSet("baseline-http", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	_ = fs.Parse(args)
	mux := http.NewServeMux()
	mux.HandleFunc("/open/ivr/{stage}/{block}", func(w http.ResponseWriter, r *http.Request) {
		st := "success_ok"
		if err := r.ParseForm(); err != nil || r.Form.Get("app_id") == "" || r.Form.Get("access_token") == "" {
			st = "error_malformed_params"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": st})
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	log.Fatal(hs.Serve(ln))
}
