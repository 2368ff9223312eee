// Command bench measures ivrd as its users would: real SIP calls from sipp (RTP audio
// streamed from a raw file) against a number whose app runs Monitor and then keeps each call
// busy with prompts, in steps of concurrent calls until quality degrades; hang-up to
// monitor-notification latency for short and long calls; API throughput next to a bare
// net/http handler; MP3 encoding speed next to the lame command; and, in the cluster phase,
// CPU per call on PostgreSQL + S3 next to SQLite + disk and the latency of API requests a
// cluster node forwards. It writes bench/results/latest.json, bench/results/details.json and
// the results section of BENCHMARKS.md.
//
//	go run ./bench [flags]        (make bench; from the repository root)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	phases      string
	steps       string
	window      time.Duration
	settle      time.Duration
	rampSecs    float64
	late        time.Duration
	shortCalls  int
	shortHold   time.Duration
	longCalls   int
	longHold    time.Duration
	apiDuration time.Duration
	apiConns    int
	encSeconds  int
	peerCalls   int
	endingCalls int
	endingHold  time.Duration
	clusterN    int
	clusterConn int
	out         string
	md          string
	work        string
	monitorMsg  string
	playMsg     string
	selfProfile string
	refine      int
	renderOnly  bool
	goroutines  bool
	retry       bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "baseline-http" {
		baselineServer(os.Args[2:])
		return
	}
	var o options
	flag.StringVar(&o.phases, "phases", "capacity,short,long,ending,api,encoder,peer,cluster", "phases to run, comma-separated")
	flag.StringVar(&o.steps, "steps", "100,250,500,750,1000,1250,1500,2000", "concurrent calls per capacity step; stops at the first step that fails")
	flag.IntVar(&o.refine, "refine", 2, "extra capacity steps that bisect between the last step that passed and the first that failed")
	flag.DurationVar(&o.window, "window", 20*time.Second, "steady-state measurement window of a capacity step")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "wait after every call of a step is recording, before the window")
	flag.Float64Var(&o.rampSecs, "ramp", 15, "seconds over which a step's calls are placed (rate = calls/ramp, 10..150 calls/s)")
	flag.DurationVar(&o.late, "late", 40*time.Millisecond, "an outbound frame arriving this much behind its RTP schedule is late")
	flag.IntVar(&o.shortCalls, "short-calls", 300, "calls in the short-call latency phase")
	flag.DurationVar(&o.shortHold, "short-hold", 10*time.Second, "length of a short call")
	flag.IntVar(&o.longCalls, "long-calls", 300, "calls in the long-call latency phase")
	flag.DurationVar(&o.longHold, "long-hold", 10*time.Minute, "length of a long call")
	flag.IntVar(&o.endingCalls, "ending-calls", 1000, "calls in the ending latency phase, placed over 10 s so that they end within 10 s")
	flag.DurationVar(&o.endingHold, "ending-hold", 20*time.Second, "length of a call in the ending latency phase")
	flag.IntVar(&o.peerCalls, "peer-calls", 1000, "concurrent calls of the peer phase (Kamailio + rtpengine); its CPU per call is compared with the capacity step of this many calls")
	flag.IntVar(&o.clusterN, "cluster-calls", 500, "concurrent calls of the cluster phase, once on SQLite + disk and once on PostgreSQL + S3")
	flag.IntVar(&o.clusterConn, "cluster-api-conns", 1, "wrk connections of the cluster phase's API latency runs (1: one request at a time)")
	flag.DurationVar(&o.apiDuration, "api-duration", 10*time.Second, "length of each wrk run")
	flag.IntVar(&o.apiConns, "api-conns", 64, "wrk connections")
	flag.IntVar(&o.encSeconds, "encoder-seconds", 600, "seconds of speech audio encoded")
	flag.StringVar(&o.out, "out", "bench/results", "results directory")
	flag.StringVar(&o.md, "md", "BENCHMARKS.md", "markdown file whose results section is rewritten (empty: none)")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new temporary one, removed at the end)")
	flag.StringVar(&o.monitorMsg, "monitor-msg", "This call is recorded for quality purposes.", "msg of the Monitor block")
	flag.StringVar(&o.playMsg, "play-msg", "Thank you for holding. All our agents are busy helping other customers. Your call is important to us, please stay on the line.", "msg of every Play block")
	flag.IntVar(&loadNice, "load-nice", 10, "niceness of sipp (the callers) and of the harness (the app and the RTP capture), which share ivrd's machine here but not in a deployment; 0 to run them at ivrd's priority")
	flag.BoolVar(&o.retry, "retry", true, "run a failed capacity step once more when other processes on the machine took 0.3 cores or more while its frames were late")
	flag.BoolVar(&o.goroutines, "goroutines", false, "count and dump ivrd's goroutines at the end of each capacity window (costs ivrd a burst of CPU)")
	flag.BoolVar(&o.renderOnly, "render-only", false, "measure nothing: rewrite latest.json, latest.md and the markdown section from -out's details.json")
	flag.StringVar(&o.selfProfile, "self-profile", "", "write a CPU profile of the harness itself to this file")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if o.selfProfile != "" {
		f, err := os.Create(o.selfProfile)
		if err != nil {
			log.Fatal(err)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Print(err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// report is what a run found.
type report struct {
	Date     string            `json:"date"`
	Command  string            `json:"command"`
	Machine  map[string]string `json:"machine"`
	Options  map[string]string `json:"options"`
	Steps    []runResult       `json:"capacity_steps,omitempty"`
	MaxCalls int               `json:"max_concurrent_monitored_calls"`
	Short    *runResult        `json:"latency_short,omitempty"`
	Long     *runResult        `json:"latency_long,omitempty"`
	Ending   *runResult        `json:"latency_ending,omitempty"`
	Peer     *peerResult       `json:"peer,omitempty"`
	API      *apiResult        `json:"api,omitempty"`
	Cluster  *clusterResult    `json:"cluster,omitempty"`
	Encoder  *encoderResult    `json:"encoder,omitempty"`
	Profile  string            `json:"profile_top,omitempty"`
	Notes    []string          `json:"notes,omitempty"`
}

func run(ctx context.Context, o options) error {
	if o.renderOnly {
		b, err := os.ReadFile(filepath.Join(o.out, "details.json"))
		if err != nil {
			return err
		}
		rep := &report{}
		if err := json.Unmarshal(b, rep); err != nil {
			return err
		}
		return writeResults(o, rep)
	}
	nofile := raiseNoFile()
	phases := map[string]bool{}
	for _, p := range strings.Split(o.phases, ",") {
		phases[strings.TrimSpace(p)] = true
	}
	if phases["peer"] {
		// Found out now rather than after the phases before it.
		for _, bin := range []string{"rtpengine", "kamailio"} {
			if _, err := exec.LookPath(bin); err != nil {
				return fmt.Errorf("the peer phase needs %s (scripts/install-deps.sh bench installs it)", bin)
			}
		}
	}
	if phases["cluster"] {
		if err := checkCluster(); err != nil {
			return err
		}
	}
	work := o.work
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "ivrd-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(work, "ivrd")
	log.Printf("building ivrd")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/ivrd").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/ivrd (run from the repository root): %v\n%s", err, out)
	}
	rep := &report{Date: time.Now().Format("2006-01-02 15:04 MST"), Command: "go run ./bench " + strings.Join(os.Args[1:], " "),
		Machine: machineInfo(), Options: map[string]string{}}
	rep.Machine["open_files_limit"] = strconv.FormatUint(nofile, 10)
	flag.VisitAll(func(f *flag.Flag) { rep.Options[f.Name] = f.Value.String() })

	if phases["capacity"] {
		if err := capacity(ctx, o, bin, work, rep); err != nil {
			return err
		}
	}
	if phases["short"] {
		r, err := latencyPhase(ctx, o, bin, work, "latency-short", o.shortCalls, o.shortHold)
		if err != nil {
			return err
		}
		rep.Short = &r
	}
	if phases["long"] {
		r, err := latencyPhase(ctx, o, bin, work, "latency-long", o.longCalls, o.longHold)
		if err != nil {
			return err
		}
		rep.Long = &r
	}
	if phases["ending"] {
		// The calls are placed over endingSpread and all last as long, so they end within it.
		rate := float64(o.endingCalls) / endingSpread.Seconds()
		cr := callRun{name: "latency-ending", n: o.endingCalls, rate: rate, hold: o.endingHold, late: o.late, dir: filepath.Join(work, "latency-ending")}
		r, err := cr.run(ctx, bin, o.monitorMsg, o.playMsg)
		if err != nil {
			return fmt.Errorf("%s: %w", cr.name, err)
		}
		logResult(r)
		rep.Ending = &r
	}
	if phases["peer"] {
		r, err := peerPhase(ctx, o, work, o.peerCalls)
		if err != nil {
			return fmt.Errorf("peer: %w", err)
		}
		if ratio, step := peerRatio(rep.Steps, r.Calls, r.RelayCPUPerCallPct); step != nil {
			r.IvrdStep, r.IvrdCPUPerCallPct, r.Ratio = step.Name, step.CPUPerCallPct, ratio
			log.Printf("%s: ivrd %.4f %%/call (%s) / rtpengine %.4f %%/call = %.2f", r.Name, step.CPUPerCallPct, step.Name, r.RelayCPUPerCallPct, ratio)
		} else {
			log.Printf("%s: no capacity step of %d calls in this run: no ratio", r.Name, r.Calls)
		}
		rep.Peer = &r
	}
	if phases["api"] {
		r, err := apiPhase(ctx, o, bin, work)
		if err != nil {
			return err
		}
		rep.API = &r
	}
	if phases["encoder"] {
		r, err := encoderPhase(o, work)
		if err != nil {
			return err
		}
		rep.Encoder = &r
	}
	if phases["cluster"] {
		r, err := clusterPhase(ctx, o, bin, work, o.clusterN)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		rep.Cluster = &r
	}
	return writeResults(o, rep)
}

// capacity runs the steps in order until one fails, then narrows the gap between the last
// step that passed and the one that failed by bisection (-refine more steps, in multiples of
// 50 calls). Every step is profiled.
func capacity(ctx context.Context, o options, bin, work string, rep *report) error {
	step := func(n int) (bool, error) {
		rate, hold := stepLoad(o, n)
		cr := callRun{name: fmt.Sprintf("capacity-%d", n), n: n, rate: rate, hold: hold,
			settle: o.settle, window: o.window, profile: true, goroutines: o.goroutines, late: o.late,
			dir: filepath.Join(work, fmt.Sprintf("capacity-%d", n))}
		r, err := cr.run(ctx, bin, o.monitorMsg, o.playMsg)
		if err != nil {
			return false, fmt.Errorf("%s: %w", cr.name, err)
		}
		logResult(r)
		rep.Steps = append(rep.Steps, r)
		keepProfiles(cr.dir, o.out, strconv.Itoa(n))
		if !r.Pass && r.InterferedBadSeconds > 0 && o.retry {
			// Late frames while other processes took a large share of the shared machine:
			// run the step once more (both runs are reported).
			log.Printf("%s: other processes took up to %.2f cores during %d of its bad seconds; running it again",
				cr.name, r.InterferencePeak, r.InterferedBadSeconds)
			cr.dir += "-again"
			r, err = cr.run(ctx, bin, o.monitorMsg, o.playMsg)
			if err != nil {
				return false, fmt.Errorf("%s: %w", cr.name, err)
			}
			r.Name += " (again)"
			logResult(r)
			rep.Steps = append(rep.Steps, r)
			keepProfiles(cr.dir, o.out, strconv.Itoa(n))
		}
		if r.Pass {
			rep.MaxCalls = max(rep.MaxCalls, n)
		}
		return r.Pass, ctx.Err()
	}
	passed, failed := 0, 0
	for _, s := range strings.Split(o.steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad step %q", s)
		}
		ok, err := step(n)
		if err != nil {
			return err
		}
		if !ok {
			failed = n
			break
		}
		passed = n
	}
	for range o.refine {
		if failed == 0 {
			break
		}
		mid := (passed + failed) / 2 / 50 * 50
		if mid <= passed || mid >= failed {
			break
		}
		ok, err := step(mid)
		if err != nil {
			return err
		}
		if ok {
			passed = mid
		} else {
			failed = mid
		}
	}
	return nil
}

// stepLoad is the call rate and call length of a capacity step of n calls (the peer phase
// places the same load): the calls are placed over -ramp seconds (10..150 calls/s) and last
// until well after the measurement window.
func stepLoad(o options, n int) (rate float64, hold time.Duration) {
	rate = min(max(float64(n)/o.rampSecs, 10), 150)
	ramp := time.Duration(float64(n) / rate * float64(time.Second))
	return rate, (ramp + o.settle + o.window + 15*time.Second).Round(time.Second)
}

// keepProfiles copies a run's profiles into the results directory, as cpu-<label>.pprof and
// so on.
func keepProfiles(dir, out, label string) {
	for _, name := range []string{"cpu.pprof", "heap.pprof", "goroutines.txt"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		ext := filepath.Ext(name)
		_ = os.WriteFile(filepath.Join(out, fmt.Sprintf("%s-%s%s", strings.TrimSuffix(name, ext), label, ext)), b, 0o644)
	}
}

func latencyPhase(ctx context.Context, o options, bin, work, name string, n int, hold time.Duration) (runResult, error) {
	rate := min(max(float64(n)/10, 10), 100)
	cr := callRun{name: name, n: n, rate: rate, hold: hold, late: o.late, dir: filepath.Join(work, name)}
	r, err := cr.run(ctx, bin, o.monitorMsg, o.playMsg)
	if err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	logResult(r)
	return r, nil
}

// endingSpread is the time over which the ending latency phase's calls are placed, and so
// end.
const endingSpread = 10 * time.Second

func logResult(r runResult) {
	log.Printf("%s: pass=%v %s | failed %d, mp3 ok %d bad %d (ffmpeg %d), rtp %d pkts late %d lost %d stall-frames %d (%.4f %%), lateness p99 %.1f ms max %.1f ms | notify p50 %.0f ms p99 %.0f ms max %.0f ms (n=%d) | api errors %d %s",
		r.Name, r.Pass, r.Why, r.FailedCalls, r.MP3OK, r.MP3Bad, r.FFmpegChecked, r.RTP.Packets, r.RTP.Late, r.RTP.LostSeq, r.RTP.StallFrames, r.RTP.LateOrLostPct,
		r.RTP.LatenessP99us/1000, r.RTP.LatenessMaxus/1000, r.NotifyP50ms, r.NotifyP99ms, r.NotifyMaxms, r.NotifyN, r.APIErrors, r.APIFailures)
	for _, m := range r.MP3Reasons {
		log.Printf("  bad mp3: %s", m)
	}
}

func numCPU() int { return runtime.NumCPU() }

// machineInfo describes the machine for the report.
func machineInfo() map[string]string {
	m := map[string]string{"cores": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) >= 2 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			m["memory"] = fmt.Sprintf("%.1f GiB", kb/1024/1024)
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m["kernel"] = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		m["os"] = "Debian " + strings.TrimSpace(string(b))
	}
	if out, _ := exec.Command("sipp", "-v").CombinedOutput(); len(out) > 0 { // sipp -v exits non-zero
		for line := range strings.Lines(string(out)) {
			if strings.Contains(line, "SIPp v") {
				m["sipp"] = strings.TrimSpace(line)
				break
			}
		}
	}
	return m
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
