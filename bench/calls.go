package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// callRun describes one batch of calls against a fresh ivrd: a capacity step (with a steady
// window in which every call is up) or a latency phase.
type callRun struct {
	name       string
	n          int
	rate       float64 // new calls per second
	hold       time.Duration
	settle     time.Duration // after all calls are recording, before the window
	window     time.Duration // steady-state measurement window (0: none)
	profile    bool          // CPU and heap profiles of ivrd during the window
	goroutines bool          // also count and dump ivrd's goroutines at the window's end
	late       time.Duration
	dir        string
	env        []string  // added to ivrd's environment (its store and blob store)
	beside     []sidecar // servers ivrd relies on, whose CPU is measured beside its own
}

// sidecar is a server ivrd relies on in a run (PostgreSQL, the S3 server): a process and its
// descendants.
type sidecar struct {
	name string
	pid  int
}

// runResult is everything measured in one callRun.
type runResult struct {
	Name     string  `json:"name"`
	Calls    int     `json:"calls"`
	Rate     float64 `json:"calls_per_second"`
	HoldS    float64 `json:"hold_s"`
	Seconds  float64 `json:"wall_s"`
	Profiled bool    `json:"profiled"`

	// Steady window (all calls up, monitored, prompts playing).
	WindowS        float64 `json:"window_s,omitempty"`
	WindowFromS    float64 `json:"window_from_s,omitempty"` // since sipp started placing calls
	MonitoredCalls int     `json:"monitored_calls_in_window,omitempty"`
	IvrdCores      float64 `json:"ivrd_cores,omitempty"`
	CPUPerCallPct  float64 `json:"cpu_per_call_pct,omitempty"`
	RSSIdleMiB     float64 `json:"rss_idle_mib,omitempty"`
	RSSLoadedMiB   float64 `json:"rss_loaded_mib,omitempty"`
	MemPerCallKiB  float64 `json:"mem_per_call_kib,omitempty"`
	Goroutines     int     `json:"ivrd_goroutines,omitempty"`
	// Go runtime memory (runtime.MemStats, KiB per call above idle, at the window's end):
	// heap spans in use (live objects plus the garbage the GC lets accumulate, GOGC=100),
	// the live heap as the last GC left it (its heap goal halved, less stacks: an estimate;
	// forcing a GC to measure it would stall the calls being measured), goroutine stacks.
	// The rest of RSS per call is outside the Go runtime: mostly libmp3lame's encoder state
	// (C malloc).
	HeapLivePerCallKiB  float64 `json:"go_heap_live_per_call_kib,omitempty"`
	HeapInusePerCallKiB float64 `json:"go_heap_inuse_per_call_kib,omitempty"`
	StackPerCallKiB     float64 `json:"go_stack_per_call_kib,omitempty"`
	OtherPerCallKiB     float64 `json:"non_go_per_call_kib,omitempty"`
	SippCores           float64 `json:"sipp_cores,omitempty"`
	HarnessCores        float64 `json:"harness_cores,omitempty"`
	MachineCores        float64 `json:"machine_busy_cores,omitempty"`
	OtherCores          float64 `json:"other_processes_cores,omitempty"`
	// The sidecars' cores over the window, and per call as CPUPerCallPct is ivrd's.
	BesideCores         map[string]float64 `json:"beside_cores,omitempty"`
	BesideCPUPerCallPct map[string]float64 `json:"beside_cpu_per_call_pct,omitempty"`

	// Outcome of every call.
	SippSuccessful int            `json:"sipp_successful"`
	SippFailed     int            `json:"sipp_failed"`
	SippReasons    map[string]int `json:"sipp_failed_reasons,omitempty"`
	Recorded       int            `json:"recordings_started"`
	WithURL        int            `json:"monitor_urls"`
	MP3OK          int            `json:"mp3_ok"`
	MP3Bad         int            `json:"mp3_bad"`
	MP3Reasons     []string       `json:"mp3_bad_examples,omitempty"`
	FFmpegChecked  int            `json:"mp3_ffmpeg_checked"`
	ToneCoverage   float64        `json:"tone_coverage_min"`
	FailedCalls    int            `json:"failed_calls"`
	APIErrors      int64          `json:"api_errors"`
	APIFailures    string         `json:"api_failures,omitempty"`
	BadSignatures  int64          `json:"bad_signatures"`
	IvrdWarnings   int            `json:"ivrd_log_warnings"`
	IvrdErrors     int            `json:"ivrd_log_errors"`
	Plays          int            `json:"plays"`

	RTP rtpStats `json:"rtp"`

	NotifyN     int     `json:"notify_latency_n"`
	NotifyP50ms float64 `json:"notify_latency_p50_ms"`
	NotifyP99ms float64 `json:"notify_latency_p99_ms"`
	NotifyMaxms float64 `json:"notify_latency_max_ms"`

	// Cores used twice a second since sipp started: [s, ivrd (and its sidecars), sipp, harness, others].
	CPUTimeline [][5]float64 `json:"cpu_timeline,omitempty"`
	// Seconds with late or stalled frames during which other processes used at least
	// interferenceCores, and the most they used then.
	InterferedBadSeconds int     `json:"bad_seconds_with_interference"`
	InterferencePeak     float64 `json:"interference_peak_cores,omitempty"`

	Pass bool   `json:"pass"`
	Why  string `json:"why,omitempty"`
}

// interferenceCores is how much CPU other processes on the machine must take, within a second
// of a late frame, for that to count as interference (well above the sampling noise).
const interferenceCores = 0.3

// run places the calls and measures.
func (cr callRun) run(ctx context.Context, bin string, monitorMsg, playMsg string) (runResult, error) {
	res := runResult{Name: cr.name, Calls: cr.n, Rate: cr.rate, HoldS: cr.hold.Seconds(), Profiled: cr.profile}
	t0 := time.Now()
	if err := os.MkdirAll(cr.dir, 0o755); err != nil {
		return res, err
	}
	rtp, err := newRTPSet()
	if err != nil {
		return res, err
	}
	rtpClosed := false
	defer func() {
		if !rtpClosed {
			rtp.close()
		}
	}()
	a, err := newApp(monitorMsg, playMsg, true)
	if err != nil {
		return res, err
	}
	defer a.close()
	p, err := newIvrd(bin, cr.dir, a.answerURL(), cr.profile, cr.env)
	if err != nil {
		return res, err
	}
	defer p.stop()
	a.connect("http://"+p.http, p.appID, p.token)

	time.Sleep(time.Second)
	idle, err := readProc(p.pid())
	if err != nil {
		return res, err
	}
	idleMem := memStats(p)
	res.RSSIdleMiB = float64(idle.rssKiB) / 1024

	sipp, err := startSipp(ctx, filepath.Join(cr.dir, "sipp"), p.sip, cr.n, cr.rate, cr.hold, rtp.port)
	if err != nil {
		return res, err
	}
	log.Printf("%s: %d calls at %.0f/s, each %v", cr.name, cr.n, cr.rate, cr.hold)
	watch := watchCPU(sipp.start, []int{p.pid()}, cr.beside, sipp.cmd.Process.Pid)

	if cr.window > 0 {
		cr.measureWindow(ctx, &res, a, p, sipp, idleMem)
	}

	if err := sipp.wait(ctx, cr.name); err != nil {
		return res, err
	}
	res.CPUTimeline = watch.finish()
	// Every recording that started owes a monitor_url notification.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		started, finished := a.countMonitored()
		if finished >= started {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	rtp.close()
	rtpClosed = true

	calls := a.snapshot()
	byFrom := map[string]*callState{}
	for _, c := range calls {
		byFrom[c.from] = &c
	}
	trace, err := sipp.readTrace()
	byes := trace.bye
	if err != nil {
		log.Printf("%s: sipp trace: %v", cr.name, err)
	}
	counts, err := sipp.counts()
	if err != nil {
		log.Printf("%s: sipp statistics: %v", cr.name, err)
	}
	res.SippSuccessful, res.SippFailed, res.SippReasons = counts.Successful, counts.Failed, counts.FailedReasons

	// Outbound RTP: a pause is explained by a block boundary of that call.
	res.RTP = rtp.stats(cr.late, sipp.start, func(port uint16) string { return trace.media[port] }, func(from string, a, b int64) bool {
		c := byFrom["+"+from]
		if c == nil {
			return false
		}
		lo, hi := a-int64(20*time.Millisecond), b+int64(20*time.Millisecond)
		for _, t := range c.blockEnds {
			if ns := t.UnixNano(); ns >= lo && ns <= hi {
				return true
			}
		}
		return false
	})

	urls := map[string]string{}
	want := map[string]time.Duration{}
	var lat []float64
	for sid, c := range calls {
		res.Plays += c.plays
		if c.recordingAt.IsZero() {
			continue
		}
		res.Recorded++
		if c.monitorURL == "" {
			continue
		}
		res.WithURL++
		urls[sid] = c.monitorURL
		if bye, ok := byes[strings.TrimPrefix(c.from, "+")]; ok {
			want[sid] = bye.Sub(c.recordingAt)
			lat = append(lat, float64(c.monitorAt.Sub(bye))/float64(time.Millisecond))
		}
	}
	res.NotifyN = len(lat)
	if len(lat) > 0 {
		sort.Float64s(lat)
		res.NotifyP50ms, res.NotifyP99ms, res.NotifyMaxms = quantile(lat, 0.5), quantile(lat, 0.99), lat[len(lat)-1]
	}

	log.Printf("%s: checking %d recordings", cr.name, len(urls))
	checks := verifyAll(urls, want, 2, max(1, len(urls)/25))
	res.ToneCoverage = 1
	okCalls := 0
	for sid, c := range calls {
		chk, has := checks[sid]
		if !has {
			continue
		}
		if chk.ffmpeg != 0 {
			res.FFmpegChecked++
		}
		if !chk.ok {
			res.MP3Bad++
			if len(res.MP3Reasons) < 5 {
				res.MP3Reasons = append(res.MP3Reasons, c.from+": "+chk.reason)
			}
			continue
		}
		res.MP3OK++
		res.ToneCoverage = min(res.ToneCoverage, chk.coverage)
		if _, ok := byes[strings.TrimPrefix(c.from, "+")]; ok {
			okCalls++
		}
	}
	res.FailedCalls = max(cr.n-okCalls, res.SippFailed)
	res.APIErrors, res.APIFailures, res.BadSignatures = a.apiErrors.Load(), a.failureSummary(), a.badSig.Load()
	res.IvrdWarnings, res.IvrdErrors = p.logLevels()
	if res.IvrdErrors > 0 || res.FailedCalls > 0 {
		_ = os.WriteFile(filepath.Join(cr.dir, "ivrd-log-tail.txt"), []byte(p.logTail(60)), 0o644)
	}
	res.Seconds = time.Since(t0).Seconds()
	for _, b := range res.RTP.Timeline {
		if x := interference(res.CPUTimeline, b[0]); x >= interferenceCores {
			res.InterferedBadSeconds++
			res.InterferencePeak = max(res.InterferencePeak, x)
		}
	}

	var why []string
	if res.FailedCalls > 0 {
		why = append(why, fmt.Sprintf("%d failed calls", res.FailedCalls))
	}
	if res.MP3Bad > 0 {
		why = append(why, fmt.Sprintf("%d bad MP3s", res.MP3Bad))
	}
	if res.RTP.LateOrLostPct >= 0.1 {
		why = append(why, fmt.Sprintf("%.3f %% late or lost frames", res.RTP.LateOrLostPct))
	}
	if cr.window > 0 && res.MonitoredCalls < cr.n {
		why = append(why, fmt.Sprintf("only %d of %d calls monitored at once", res.MonitoredCalls, cr.n))
	}
	res.Pass = len(why) == 0
	res.Why = strings.Join(why, ", ")
	return res, nil
}

// measureWindow waits until every call is recording (or the ramp should be over), lets it
// settle, then measures CPU and memory over the window, profiling ivrd if asked.
func (cr callRun) measureWindow(ctx context.Context, res *runResult, a *app, p *ivrd, sipp *sippRun, idleMem map[string]float64) {
	ramp := time.Duration(float64(cr.n) / cr.rate * float64(time.Second))
	giveUp := sipp.start.Add(ramp + 20*time.Second)
	for a.monitoring.Load() < int64(cr.n) && time.Now().Before(giveUp) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(cr.settle)
	if left := time.Until(sipp.start.Add(cr.hold)); left < cr.window+time.Second {
		log.Printf("%s: only %v left before the first hang-up; window shortened", cr.name, left)
		cr.window = max(left-time.Second, time.Second)
	}
	mon0 := a.monitoring.Load()
	var profDone chan error
	if cr.profile {
		profDone = make(chan error, 1)
		secs := max(int(cr.window/time.Second)-1, 1)
		go func() {
			profDone <- p.fetchProfile(ctx, fmt.Sprintf("profile?seconds=%d", secs), filepath.Join(cr.dir, "cpu.pprof"))
		}()
	}
	self := os.Getpid()
	m0 := readMachine()
	i0, _ := readProc(p.pid())
	s0, _ := readProc(sipp.cmd.Process.Pid)
	h0, _ := readProc(self)
	b0 := readSidecars(cr.beside)
	var peakRSS int64
	end := time.Now().Add(cr.window)
	for time.Now().Before(end) {
		time.Sleep(500 * time.Millisecond)
		if s, err := readProc(p.pid()); err == nil {
			peakRSS = max(peakRSS, s.rssKiB)
		}
	}
	m1 := readMachine()
	i1, _ := readProc(p.pid())
	s1, _ := readProc(sipp.cmd.Process.Pid)
	h1, _ := readProc(self)
	b1 := readSidecars(cr.beside)
	mon1 := a.monitoring.Load()
	peakRSS = max(peakRSS, i1.rssKiB)

	n := float64(min(mon0, mon1))
	res.MonitoredCalls = int(n)
	res.WindowS = i1.at.Sub(i0.at).Seconds()
	res.WindowFromS = i0.at.Sub(sipp.start).Seconds()
	res.IvrdCores = cpuShare(i0, i1)
	res.SippCores = cpuShare(s0, s1)
	res.HarnessCores = cpuShare(h0, h1)
	res.MachineCores = busyCores(m0, m1, numCPU())
	besideCores := 0.0
	for i, sc := range cr.beside {
		if res.BesideCores == nil {
			res.BesideCores, res.BesideCPUPerCallPct = map[string]float64{}, map[string]float64{}
		}
		c := cpuShare(b0[i], b1[i])
		besideCores += c
		res.BesideCores[sc.name] = c
		if n > 0 {
			res.BesideCPUPerCallPct[sc.name] = 100 * c / n
		}
	}
	res.OtherCores = max(res.MachineCores-res.IvrdCores-res.SippCores-res.HarnessCores-besideCores, 0)
	res.RSSLoadedMiB = float64(peakRSS) / 1024
	if n > 0 {
		res.CPUPerCallPct = 100 * res.IvrdCores / n
		res.MemPerCallKiB = (float64(peakRSS) - res.RSSIdleMiB*1024) / n
	}
	if cr.profile {
		if err := <-profDone; err != nil {
			log.Printf("%s: cpu profile: %v", cr.name, err)
		}
		if err := p.fetchProfile(ctx, "heap", filepath.Join(cr.dir, "heap.pprof")); err != nil {
			log.Printf("%s: heap profile: %v", cr.name, err)
		}
		if m := memStats(p); n > 0 && m != nil && idleMem != nil {
			live := func(m map[string]float64) float64 { return (m["NextGC"] - m["Stack"]) / 2 }
			res.HeapLivePerCallKiB = (live(m) - live(idleMem)) / 1024 / n
			res.HeapInusePerCallKiB = (m["HeapInuse"] - idleMem["HeapInuse"]) / 1024 / n
			res.StackPerCallKiB = (m["Stack"] - idleMem["Stack"]) / 1024 / n
			res.OtherPerCallKiB = res.MemPerCallKiB - res.HeapInusePerCallKiB - res.StackPerCallKiB
		}
		if cr.goroutines {
			// Walking every goroutine's stack costs ivrd a burst of CPU that shows up as late
			// frames near capacity, so it is opt-in.
			res.Goroutines = goroutines(p)
			_ = p.fetchProfile(ctx, "goroutine?debug=1", filepath.Join(cr.dir, "goroutines.txt"))
		}
	}
	log.Printf("%s: window %.0f s with %d calls monitored: ivrd %.2f cores (%.3f %%/call), RSS %.0f MiB (%.1f KiB/call); sipp %.2f, harness %.2f, others %.2f cores",
		cr.name, res.WindowS, res.MonitoredCalls, res.IvrdCores, res.CPUPerCallPct, res.RSSLoadedMiB, res.MemPerCallKiB, res.SippCores, res.HarnessCores, res.OtherCores)
	for _, sc := range cr.beside {
		log.Printf("%s: beside ivrd, %s %.3f cores (%.4f %%/call)", cr.name, sc.name, res.BesideCores[sc.name], res.BesideCPUPerCallPct[sc.name])
	}
}

// readSidecars reads the CPU time of each sidecar (one that is gone reads as a zero sample).
func readSidecars(scs []sidecar) []procSample {
	roots := make([]int, len(scs))
	for i, sc := range scs {
		roots[i] = sc.pid
	}
	return readTrees(roots)
}

// memStats reads runtime.MemStats from ivrd's heap profile (debug=1 lists them as "# Name = v").
func memStats(p *ivrd) map[string]float64 {
	if p.pprof == "" {
		return nil
	}
	res, err := http.Get("http://" + p.pprof + "/debug/pprof/heap?debug=1")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		var name string
		var v float64
		if n, _ := fmt.Sscanf(line, "# %s = %g", &name, &v); n == 2 {
			out[name] = v
		}
	}
	return out
}

// goroutines reads the goroutine count from ivrd's profiler.
func goroutines(p *ivrd) int {
	res, err := http.Get("http://" + p.pprof + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	var n int
	fmt.Sscanf(string(b), "goroutine profile: total %d", &n)
	return n
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// raiseNoFile lifts the open-file limit to the hard limit; ivrd and sipp inherit it (a
// thousand calls hold a few thousand sockets). Setting it explicitly also stops Go from
// restoring the original soft limit in child processes.
func raiseNoFile() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	r.Cur = r.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}
