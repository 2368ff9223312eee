package main

import (
	"context"
	_ "embed"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// The peer phase measures the open-source carrier stack on the capacity phase's load: sipp
// places the same calls (1 kHz PCMU for the whole call) through Kamailio (record-route, media
// anchored in rtpengine, userspace relay) to a sipp answerer that echoes every RTP packet, so
// rtpengine relays two streams each way per call. CPU and memory are rtpengine's and
// Kamailio's over the same kind of window as a capacity step.

//go:embed peer/kamailio.cfg
var peerKamailioCfg string

var peerKamailioTmpl = template.Must(template.New("kamailio.cfg").Parse(peerKamailioCfg))

// peerResult is what the peer phase measured.
type peerResult struct {
	Name              string  `json:"name"`
	Calls             int     `json:"calls"`
	Rate              float64 `json:"calls_per_second"`
	HoldS             float64 `json:"hold_s"`
	Seconds           float64 `json:"wall_s"`
	Rtpengine         string  `json:"rtpengine_version"`
	Kamailio          string  `json:"kamailio_version"`
	KamailioProcesses int     `json:"kamailio_processes"`

	// Steady window (every call up, media relayed both ways).
	WindowS        float64 `json:"window_s"`
	WindowFromS    float64 `json:"window_from_s"` // since sipp started placing calls
	CallsInWindow  int     `json:"calls_in_window"`
	RtpengineCores float64 `json:"rtpengine_cores"`
	KamailioCores  float64 `json:"kamailio_cores"`
	// CPU per call, as a share of one core per concurrent call (as cpu_per_call_pct is ivrd's).
	RelayCPUPerCallPct    float64 `json:"rtpengine_cpu_per_call_pct"`
	KamailioCPUPerCallPct float64 `json:"kamailio_cpu_per_call_pct"`
	// Memory of rtpengine and Kamailio's processes together: PSS (shared pages divided among
	// the processes mapping them) and RSS, idle and at the window's peak, and the growth per
	// call.
	PSSIdleMiB         float64 `json:"pss_idle_mib"`
	PSSLoadedMiB       float64 `json:"pss_loaded_mib"`
	PSSPerCallKiB      float64 `json:"pss_per_call_kib"`
	RSSIdleMiB         float64 `json:"rss_idle_mib"`
	RSSLoadedMiB       float64 `json:"rss_loaded_mib"`
	RSSPerCallKiB      float64 `json:"rss_per_call_kib"`
	RelayPSSPerCallKiB float64 `json:"rtpengine_pss_per_call_kib"`
	SippCores          float64 `json:"sipp_cores"` // the caller
	AnswererCores      float64 `json:"answerer_cores"`
	HarnessCores       float64 `json:"harness_cores"`
	MachineCores       float64 `json:"machine_busy_cores"`
	OtherCores         float64 `json:"other_processes_cores"`

	// Outcome.
	SippSuccessful int            `json:"sipp_successful"`
	SippFailed     int            `json:"sipp_failed"`
	SippReasons    map[string]int `json:"sipp_failed_reasons,omitempty"`
	// What rtpengine relayed (its own per-call packet stats), and the RTP packets the calls
	// should have brought: 50 a second each way for the whole call.
	Relayed         relayStats `json:"rtpengine_relayed"`
	ExpectedPackets int64      `json:"expected_rtp_packets"`

	// The comparison: ivrd's CPU per call in the capacity step of the same number of calls in
	// this run, over rtpengine's.
	IvrdStep          string  `json:"ivrd_step,omitempty"`
	IvrdCPUPerCallPct float64 `json:"ivrd_cpu_per_call_pct,omitempty"`
	Ratio             float64 `json:"peer_cpu_ratio_vs_rtpengine_relay,omitempty"`

	// Cores used twice a second since sipp started: [s, rtpengine + Kamailio, sipp, harness, others].
	CPUTimeline [][5]float64 `json:"cpu_timeline,omitempty"`

	Pass bool   `json:"pass"`
	Why  string `json:"why,omitempty"`
}

// relayedMin is the share of the expected RTP packets rtpengine must have relayed for the
// relay to count as working (sipp's stream starts with the ACK, the echo a moment later).
const relayedMin = 0.95

// peerPhase runs n calls through Kamailio and rtpengine.
func peerPhase(ctx context.Context, o options, work string, n int) (peerResult, error) {
	rate, hold := stepLoad(o, n)
	res := peerResult{Name: fmt.Sprintf("peer-%d", n), Calls: n, Rate: rate, HoldS: hold.Seconds(),
		Rtpengine: commandVersion("rtpengine", "--version"), Kamailio: commandVersion("kamailio", "-v")}
	t0 := time.Now()
	dir := filepath.Join(work, res.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	rtpe, err := startRtpengine(dir)
	if err != nil {
		return res, err
	}
	defer rtpe.stop()
	ans, err := startAnswerer(ctx, filepath.Join(dir, "answerer"))
	if err != nil {
		return res, err
	}
	defer ans.stop()
	kam, err := startPeerKamailio(dir, rtpe.ngPort, ans.addr)
	if err != nil {
		return res, err
	}
	defer kam.Stop()

	// The callers' media port, which every call's SDP names. rtpengine latches on to the
	// address the caller's RTP comes from (sipp's stream socket) and sends the echo there, so
	// this socket only keeps the SDP's port bound.
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer sink.Close()

	// Kamailio forks its workers after it listens; PSS divides shared pages among all of
	// them, so the set must be complete before anything is read.
	kamPIDs := stableGroup(kam.PID())
	res.KamailioProcesses = len(kamPIDs)
	servers := append([]int{rtpe.pid()}, kamPIDs...)
	idle, err := readMem(servers)
	if err != nil {
		return res, err
	}
	res.PSSIdleMiB, res.RSSIdleMiB = float64(idle.pssKiB)/1024, float64(idle.rssKiB)/1024
	idleRelay, _ := readMem([]int{rtpe.pid()})

	sipp, err := startSipp(ctx, filepath.Join(dir, "sipp"), kam.Addr, n, rate, hold, sink.LocalAddr().(*net.UDPAddr).Port)
	if err != nil {
		return res, err
	}
	log.Printf("%s: %d calls at %.0f/s through Kamailio and rtpengine, each %v", res.Name, n, rate, hold)
	watch := watchCPU(sipp.start, servers, nil, sipp.cmd.Process.Pid)

	// Every call up (sipp's count of calls in progress), then settle.
	ramp := time.Duration(float64(n) / rate * float64(time.Second))
	giveUp := sipp.start.Add(ramp + 20*time.Second)
	for current(sipp) < n && time.Now().Before(giveUp) && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(o.settle)
	window := o.window
	if left := time.Until(sipp.start.Add(hold)); left < window+time.Second {
		window = max(left-time.Second, time.Second)
	}
	calls0 := current(sipp)
	// rtpengine, Kamailio, the caller, the answerer, the harness.
	procs := [][]int{{rtpe.pid()}, kamPIDs, {sipp.cmd.Process.Pid}, {ans.pid()}, {os.Getpid()}}
	m0 := readMachine()
	p0 := readEach(procs)
	peak, peakRelay := idle, idleRelay
	end := time.Now().Add(window)
	for time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		if m, err := readMem(servers); err == nil {
			peak.pssKiB, peak.rssKiB = max(peak.pssKiB, m.pssKiB), max(peak.rssKiB, m.rssKiB)
		}
		if m, err := readMem([]int{rtpe.pid()}); err == nil {
			peakRelay.pssKiB = max(peakRelay.pssKiB, m.pssKiB)
		}
	}
	m1 := readMachine()
	p1 := readEach(procs)
	calls := min(calls0, current(sipp))

	res.CallsInWindow = calls
	res.WindowS = p1[0].at.Sub(p0[0].at).Seconds()
	res.WindowFromS = p0[0].at.Sub(sipp.start).Seconds()
	cores := make([]float64, len(procs))
	for i := range procs {
		cores[i] = cpuShare(p0[i], p1[i])
	}
	res.RtpengineCores, res.KamailioCores, res.SippCores, res.AnswererCores, res.HarnessCores = cores[0], cores[1], cores[2], cores[3], cores[4]
	res.MachineCores = busyCores(m0, m1, numCPU())
	res.OtherCores = max(res.MachineCores-res.RtpengineCores-res.KamailioCores-res.SippCores-res.AnswererCores-res.HarnessCores, 0)
	res.PSSLoadedMiB, res.RSSLoadedMiB = float64(peak.pssKiB)/1024, float64(peak.rssKiB)/1024
	if calls > 0 {
		res.RelayCPUPerCallPct = 100 * res.RtpengineCores / float64(calls)
		res.KamailioCPUPerCallPct = 100 * res.KamailioCores / float64(calls)
		res.PSSPerCallKiB = float64(peak.pssKiB-idle.pssKiB) / float64(calls)
		res.RSSPerCallKiB = float64(peak.rssKiB-idle.rssKiB) / float64(calls)
		res.RelayPSSPerCallKiB = float64(peakRelay.pssKiB-idleRelay.pssKiB) / float64(calls)
	}
	log.Printf("%s: window %.0f s with %d calls: rtpengine %.3f cores (%.4f %%/call), Kamailio %.3f cores (%.4f %%/call), PSS %.0f → %.0f MiB (%.1f KiB/call); sipp %.2f, answerer %.2f, harness %.2f, others %.2f cores",
		res.Name, res.WindowS, calls, res.RtpengineCores, res.RelayCPUPerCallPct, res.KamailioCores, res.KamailioCPUPerCallPct,
		res.PSSIdleMiB, res.PSSLoadedMiB, res.PSSPerCallKiB, res.SippCores, res.AnswererCores, res.HarnessCores, res.OtherCores)

	if err := sipp.wait(ctx, res.Name); err != nil {
		return res, err
	}
	res.CPUTimeline = watch.finish()
	counts, err := sipp.counts()
	if err != nil {
		log.Printf("%s: sipp statistics: %v", res.Name, err)
	}
	res.SippSuccessful, res.SippFailed, res.SippReasons = counts.Successful, counts.Failed, counts.FailedReasons
	time.Sleep(time.Second) // the last calls' packet stats
	if res.Relayed, err = rtpe.relayed(); err != nil {
		log.Printf("%s: rtpengine's packet stats: %v", res.Name, err)
	}
	res.ExpectedPackets = int64(n) * 2 * 50 * int64(hold/time.Second)
	log.Printf("%s: rtpengine relayed %d RTP packets (%d expected) in %d calls, %d both ways", res.Name, res.Relayed.Packets, res.ExpectedPackets, res.Relayed.Calls, res.Relayed.BothWays)
	res.Seconds = time.Since(t0).Seconds()

	var why []string
	if res.SippSuccessful < n || res.SippFailed > 0 {
		why = append(why, fmt.Sprintf("%d of %d calls completed, %d failed", res.SippSuccessful, n, res.SippFailed))
	}
	if calls < n {
		why = append(why, fmt.Sprintf("only %d of %d calls up at once", calls, n))
	}
	if res.Relayed.BothWays < n || float64(res.Relayed.Packets) < relayedMin*float64(res.ExpectedPackets) {
		why = append(why, fmt.Sprintf("rtpengine relayed %d of %d RTP packets, %d of %d calls both ways", res.Relayed.Packets, res.ExpectedPackets, res.Relayed.BothWays, n))
	}
	res.Pass = len(why) == 0
	res.Why = strings.Join(why, ", ")
	return res, nil
}

// current is how many calls sipp has in progress (its statistics file, written every second).
func current(s *sippRun) int {
	c, _ := s.counts()
	return c.Current
}

// peerRatio is ivrd's CPU per call in the capacity step of `calls` calls (the last that
// passed, else the last measured) over rtpengine's relay CPU per call; 0 when there is no
// such step or nothing to divide by.
func peerRatio(steps []runResult, calls int, relayPct float64) (ratio float64, step *runResult) {
	for i := range steps {
		r := &steps[i]
		if r.Calls != calls || r.CPUPerCallPct <= 0 {
			continue
		}
		if step == nil || r.Pass || !step.Pass {
			step = r
		}
	}
	if step == nil || relayPct <= 0 {
		return 0, step
	}
	return step.CPUPerCallPct / relayPct, step
}

// startPeerKamailio runs Kamailio relaying every call to answerer, media through rtpengine's
// ng port.
func startPeerKamailio(dir string, ngPort int, answerer string) (*testpeer.KamailioServer, error) {
	modules, err := testpeer.KamailioModules()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // a port free a moment ago may be taken by then
		addr, err := freeUDP()
		if err != nil {
			return nil, err
		}
		_, p, _ := strings.Cut(addr, ":")
		port, _ := strconv.Atoi(p)
		var cfg strings.Builder
		if err := peerKamailioTmpl.Execute(&cfg, map[string]any{"Port": port, "ModulePath": modules,
			"NGPort": ngPort, "Answerer": answerer, "Children": 4}); err != nil {
			return nil, err
		}
		ks, err := testpeer.StartKamailioConfig(testpeer.KamailioRun{Dir: dir, Config: cfg.String(), Port: port, SHMMiB: 256, PKGMiB: 16})
		if err == nil {
			return ks, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// answerer is the sipp that answers the peer phase's calls and echoes their RTP.
type answerer struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startAnswerer(ctx context.Context, dir string) (*answerer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		mp, err := testpeer.FreeMediaPort()
		if err != nil {
			return nil, err
		}
		sf := filepath.Join(dir, "answerer.xml")
		if err := os.WriteFile(sf, []byte(testpeer.EchoScenario(mp)), 0o644); err != nil {
			return nil, err
		}
		sp, err := freeUDP()
		if err != nil {
			return nil, err
		}
		_, spPort, _ := strings.Cut(sp, ":")
		port, _ := strconv.Atoi(spPort)
		out, err := os.Create(filepath.Join(dir, "sipp.out"))
		if err != nil {
			return nil, err
		}
		a := &answerer{addr: sp, exited: make(chan struct{})}
		a.cmd = exec.CommandContext(ctx, "nice", "-n", strconv.Itoa(loadNice), "sipp", "-sf", sf, "-nostdin",
			"-i", "127.0.0.1", "-p", spPort, "-mi", "127.0.0.1", "-mp", strconv.Itoa(mp), "-rtp_echo",
			"-max_socket", "100000", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
		a.cmd.Dir = dir
		a.cmd.Stdout, a.cmd.Stderr = out, out
		if err := a.cmd.Start(); err != nil {
			out.Close()
			return nil, err
		}
		go func() { _ = a.cmd.Wait(); out.Close(); close(a.exited) }()
		if lastErr = testpeer.WaitListening(port, a.exited, 5*time.Second); lastErr == nil {
			lastErr = testpeer.WaitListening(mp, a.exited, 5*time.Second)
		}
		if lastErr == nil {
			return a, nil
		}
		a.stop()
	}
	return nil, fmt.Errorf("answering sipp: %w", lastErr)
}

func (a *answerer) pid() int { return a.cmd.Process.Pid }

// stop ends the answering sipp (it answers until stopped).
func (a *answerer) stop() {
	_ = a.cmd.Process.Kill()
	<-a.exited
}

// commandVersion is the version a command reports: the first word of its output that
// starts with a digit ("Version: 10.5.3.5-1+deb12u1", "version: kamailio 5.6.3 (x86_64/linux)").
func commandVersion(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	for _, f := range strings.Fields(string(out)) {
		if f[0] >= '0' && f[0] <= '9' {
			return f
		}
	}
	return "?"
}

// stableGroup is process group pgid once it has had the same members for a second (or after
// ten seconds).
func stableGroup(pgid int) []int {
	prev := processGroup(pgid)
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		cur := processGroup(pgid)
		if slices.Equal(cur, prev) && len(cur) > 0 {
			time.Sleep(500 * time.Millisecond)
			if again := processGroup(pgid); slices.Equal(again, cur) {
				return cur
			}
		}
		prev = cur
	}
	return prev
}
