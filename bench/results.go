package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Markers around the part of BENCHMARKS.md the harness rewrites; the rest is prose.
const (
	mdBegin = "<!-- bench:results:begin (written by `make bench`; edit outside these markers) -->"
	mdEnd   = "<!-- bench:results:end -->"
)

// targetCalls is the capacity target: concurrent monitored calls on 2 cores (issue 14).
const targetCalls = 2000

// headline picks the capacity step the headline numbers come from: the largest that passed,
// else the first.
func (rep *report) headline() *runResult {
	var h *runResult
	for i := range rep.Steps {
		r := &rep.Steps[i]
		if h == nil || r.Pass && (!h.Pass || r.Calls > h.Calls) {
			h = r
		}
	}
	return h
}

func writeResults(o options, rep *report) error {
	// Profile summaries of the headline step (the largest that passed) and of the largest
	// step measured (where capacity broke).
	if len(rep.Steps) > 0 {
		largest := rep.Steps[0]
		for _, r := range rep.Steps {
			if r.Calls > largest.Calls {
				largest = r
			}
		}
		rep.Profile = fmt.Sprintf("cpu-%d.pprof", largest.Calls)
		for _, n := range []int{rep.headline().Calls, largest.Calls} {
			profileSummaries(o.out, strconv.Itoa(n))
		}
	}

	if c := rep.Cluster; c != nil {
		for _, r := range []runResult{c.SQLiteDisk, c.PostgresS3} {
			profileSummaries(o.out, strings.TrimPrefix(r.Name, "cluster-"))
		}
	}

	// latest.json: numbers only.
	flat := map[string]float64{}
	if len(rep.Steps) > 0 {
		h := rep.headline()
		flat["max_concurrent_monitored_calls"] = float64(rep.MaxCalls)
		flat["cpu_per_call_pct"] = round(h.CPUPerCallPct, 4)
		flat["mem_per_call_kib"] = round(h.MemPerCallKiB, 1)
		flat["late_or_lost_frames_pct"] = round(h.RTP.LateOrLostPct, 4)
		flat["headline_step_calls"] = float64(h.Calls)
		fail := 0
		for _, r := range rep.Steps {
			if !r.Pass && (fail == 0 || r.Calls < fail) {
				fail = r.Calls
			}
		}
		if fail > 0 {
			flat["smallest_failing_step_calls"] = float64(fail)
		}
	}
	var p50, p99 float64
	for _, r := range []*runResult{rep.Short, rep.Long} {
		if r != nil && r.NotifyN > 0 {
			p50, p99 = max(p50, r.NotifyP50ms), max(p99, r.NotifyP99ms)
		}
	}
	if rep.Short != nil || rep.Long != nil {
		flat["notify_latency_p50_ms"] = round(p50, 1)
		flat["notify_latency_p99_ms"] = round(p99, 1)
	}
	for phase, r := range map[string]*runResult{"short": rep.Short, "long": rep.Long, "ending": rep.Ending} {
		if r != nil {
			flat["notify_latency_"+phase+"_p50_ms"] = round(r.NotifyP50ms, 1)
			flat["notify_latency_"+phase+"_p99_ms"] = round(r.NotifyP99ms, 1)
			flat[phase+"_calls"] = float64(r.Calls)
			flat[phase+"_call_seconds"] = r.HoldS
		}
	}
	if r := rep.Peer; r != nil {
		flat["peer_calls"] = float64(r.Calls)
		flat["rtpengine_cpu_per_call_pct"] = round(r.RelayCPUPerCallPct, 4)
		flat["kamailio_cpu_per_call_pct"] = round(r.KamailioCPUPerCallPct, 4)
		flat["peer_mem_per_call_kib"] = round(r.PSSPerCallKiB, 1)
		if r.Ratio > 0 {
			flat["peer_cpu_ratio_vs_rtpengine_relay"] = round(r.Ratio, 3)
			flat["peer_ivrd_cpu_per_call_pct"] = round(r.IvrdCPUPerCallPct, 4)
		}
	}
	if a := rep.API; a != nil {
		flat["api_ratio_vs_baseline"] = round(a.Ratio, 3)
		flat["api_rps_ivrd"] = round(a.IvrdMean, 0)
		flat["api_rps_baseline"] = round(a.BaselineMean, 0)
	}
	if c := rep.Cluster; c != nil {
		clusterFlat(flat, c)
	}
	if e := rep.Encoder; e != nil {
		flat["encoder_ratio_vs_lame"] = round(e.Ratio, 3)
		flat["encoder_x_realtime"] = round(e.IvrdXRealtime, 0)
		flat["lame_x_realtime"] = round(e.LameXRealtime, 0)
	}
	if err := writeJSON(filepath.Join(o.out, "latest.json"), flat); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(o.out, "details.json"), rep); err != nil {
		return err
	}
	md := markdown(rep, o.out)
	if err := os.WriteFile(filepath.Join(o.out, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if o.md != "" {
		if err := spliceMarkdown(o.md, md); err != nil {
			return err
		}
	}
	log.Printf("results: %s/latest.json, details.json, latest.md%s", o.out, map[bool]string{true: ", " + o.md, false: ""}[o.md != ""])
	return nil
}

// profileSummaries writes text summaries of a run's profiles (cpu-<label>.pprof, ...) next to
// them.
func profileSummaries(out, label string) {
	prof := filepath.Join(out, fmt.Sprintf("cpu-%s.pprof", label))
	if b, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", prof).Output(); err == nil {
		_ = os.WriteFile(filepath.Join(out, fmt.Sprintf("profile-top-%s.txt", label)), b, 0o644)
	}
	if b, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=60", prof).Output(); err == nil {
		_ = os.WriteFile(filepath.Join(out, fmt.Sprintf("profile-cum-%s.txt", label)), b, 0o644)
	}
	heap := filepath.Join(out, fmt.Sprintf("heap-%s.pprof", label))
	if b, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=25", heap).Output(); err == nil {
		_ = os.WriteFile(filepath.Join(out, fmt.Sprintf("heap-top-%s.txt", label)), b, 0o644)
	}
}

func round(v float64, places int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', places, 64), 64)
	return f
}

// spliceMarkdown replaces the results section of path (creating the file if needed).
func spliceMarkdown(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := mdBegin + "\n" + section + mdEnd
	i, j := strings.Index(s, mdBegin), strings.Index(s, mdEnd)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(mdEnd):]
	case s == "":
		s = "# ivrd benchmarks\n\n" + block + "\n"
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// markdown renders the results section.
func markdown(rep *report, out string) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	m := rep.Machine
	w("## Latest run\n\n")
	w("- **Date:** %s\n", rep.Date)
	w("- **Machine:** %s cores (%s), %s, %s, %s; %s; %s; open-file limit %s\n", m["cores"], m["cpu"], m["memory"], m["os"], m["kernel"], m["go"], m["sipp"], m["open_files_limit"])
	w("- **Command:** `make bench` → `%s`\n", rep.Command)
	w("- **Raw results:** `%s/latest.json` (headline numbers), `%s/details.json` (everything below and more), profiles `%s/cpu-N.pprof`, `heap-N.pprof`\n\n", out, out, out)

	w("### Targets\n\n| metric | target | result | met |\n|---|---|---|---|\n")
	if h := rep.headline(); h != nil {
		w("| concurrent monitored calls, < 0.1 %% late or lost frames | ≥ %d on 2 cores | %d | %s |\n", targetCalls, rep.MaxCalls, yes(rep.MaxCalls >= targetCalls))
		w("| CPU per call (at %d calls) | ≤ 0.2 %% of a core | %.3f %% | %s |\n", h.Calls, h.CPUPerCallPct, yes(h.CPUPerCallPct <= 0.2))
		w("| memory per call (at %d calls) | ≤ 64 KiB | %.1f KiB | %s |\n", h.Calls, h.MemPerCallKiB, yes(h.MemPerCallKiB <= 64))
		w("| late or lost outbound frames (at %d calls) | < 0.1 %% | %.4f %% | %s |\n", h.Calls, h.RTP.LateOrLostPct, yes(h.RTP.LateOrLostPct < 0.1))
	}
	for _, r := range []*runResult{rep.Short, rep.Long} {
		if r == nil {
			continue
		}
		w("| monitor notification after hang-up, %s calls (%d × %s) | ≤ 1 s p99 | p50 %.0f ms, p99 %.0f ms | %s |\n",
			strings.TrimPrefix(r.Name, "latency-"), r.Calls, fmtSecs(r.HoldS), r.NotifyP50ms, r.NotifyP99ms, yes(r.NotifyN > 0 && r.NotifyP99ms <= 1000))
	}
	if r := rep.Ending; r != nil {
		w("| monitor notification after hang-up, %d calls ending within %s | ≤ 100 ms p99 | p50 %.0f ms, p99 %.0f ms | %s |\n",
			r.Calls, fmtSecs(endingSpread.Seconds()), r.NotifyP50ms, r.NotifyP99ms, yes(r.NotifyN > 0 && r.NotifyP99ms <= 100))
	}
	if r := rep.Peer; r != nil && r.Ratio > 0 {
		w("| CPU per call, ivrd (%s) / rtpengine's userspace relay (%s) | ≤ 1× | %.2f× (%.4f %% / %.4f %%) | %s |\n",
			r.IvrdStep, r.Name, r.Ratio, r.IvrdCPUPerCallPct, r.RelayCPUPerCallPct, yes(r.Ratio <= 1))
	}
	if a := rep.API; a != nil {
		w("| API throughput, Monitor path vs bare net/http | ≥ 0.5× | %.2f× (%.0f vs %.0f req/s) | %s |\n", a.Ratio, a.IvrdMean, a.BaselineMean, yes(a.Ratio >= 0.5))
	}
	if e := rep.Encoder; e != nil {
		w("| MP3 encoder vs lame command | ≥ 1× | %.2f× (%.0fx vs %.0fx realtime) | %s |\n", e.Ratio, e.IvrdXRealtime, e.LameXRealtime, yes(e.Ratio >= 1))
	}

	if len(rep.Steps) > 0 {
		w("\n### Capacity steps\n\nEach step: a fresh ivrd; sipp places the calls over about %s s; each caller streams a 1 kHz tone (RTP, PCMU) until it hangs up; the app runs Monitor, then Play after Play. CPU and memory are ivrd's own (`/proc`), over a %s window in which every call is up and recording. Late: more than %s behind the RTP schedule.\n\n",
			rep.Options["ramp"], rep.Options["window"], rep.Options["late"])
		w("| calls | calls/s | monitored in window | ivrd cores | CPU/call | RSS idle → loaded | mem/call | of which Go heap in use (live est.) / stacks / non-Go | goroutines | frames | late | lost | stall frames | late or lost | lateness p99 / max | failed calls | MP3 ok / bad (ffmpeg-checked) | notify p50 / p99 | sipp / harness / other cores | pass |\n")
		w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		steps := slices.Clone(rep.Steps)
		slices.SortStableFunc(steps, func(a, b runResult) int { return a.Calls - b.Calls })
		for _, r := range steps {
			w("| %s | %.0f | %d | %.2f | %.3f %% | %.0f → %.0f MiB | %.1f KiB | %.0f (%.0f) / %.0f / %.0f KiB | %s | %d | %d | %d | %d | %.4f %% | %.1f / %.1f ms | %d | %d / %d (%d) | %.0f / %.0f ms | %.2f / %.2f / %.2f | %s |\n",
				strings.TrimPrefix(r.Name, "capacity-"), r.Rate, r.MonitoredCalls, r.IvrdCores, r.CPUPerCallPct, r.RSSIdleMiB, r.RSSLoadedMiB, r.MemPerCallKiB,
				r.HeapInusePerCallKiB, r.HeapLivePerCallKiB, r.StackPerCallKiB, r.OtherPerCallKiB, orDash(r.Goroutines),
				r.RTP.Packets, r.RTP.Late, r.RTP.LostSeq, r.RTP.StallFrames, r.RTP.LateOrLostPct, r.RTP.LatenessP99us/1000, r.RTP.LatenessMaxus/1000,
				r.FailedCalls, r.MP3OK, r.MP3Bad, r.FFmpegChecked, r.NotifyP50ms, r.NotifyP99ms, r.SippCores, r.HarnessCores, r.OtherCores, passText(r))
		}
	}
	if rep.Short != nil || rep.Long != nil || rep.Ending != nil {
		w("\n### Hang-up → monitor notification\n\nFrom the BYE leaving sipp (its message trace) to the notification carrying `monitor_url` arriving at the app.\n\n")
		w("| phase | calls | call length | calls/s | p50 | p99 | max | failed calls | MP3 ok / bad | late or lost frames |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range []*runResult{rep.Short, rep.Long, rep.Ending} {
			if r == nil {
				continue
			}
			w("| %s | %d | %s | %.0f | %.0f ms | %.0f ms | %.0f ms | %d | %d / %d | %.4f %% |\n", r.Name, r.Calls, fmtSecs(r.HoldS), r.Rate,
				r.NotifyP50ms, r.NotifyP99ms, r.NotifyMaxms, r.FailedCalls, r.MP3OK, r.MP3Bad, r.RTP.LateOrLostPct)
		}
	}
	if r := rep.Peer; r != nil {
		peerMarkdown(w, r)
	}
	if a := rep.API; a != nil {
		w("\n### API throughput (wrk, %d connections, %.0f s per run, runs alternating)\n\n", a.Connections, a.Seconds)
		w("| server | req/s per run | mean | p99 latency | errors |\n|---|---|---|---|---|\n")
		w("| bare net/http handler | %s | %.0f | %.2f ms | |\n", floats(a.BaselineRPS), a.BaselineMean, a.BaselineP99ms)
		w("| ivrd `POST /open/ivr/middle/monitor` (answers `%s`) | %s | %.0f | %.2f ms | %d (all runs) |\n", a.Status, floats(a.IvrdRPS), a.IvrdMean, a.IvrdP99ms, a.Errors)
	}
	if c := rep.Cluster; c != nil {
		clusterMarkdown(w, c, out)
	}
	if e := rep.Encoder; e != nil {
		w("\n### MP3 encoder (%.0f s of espeak-ng speech, 8 kHz mono, %d kbps CBR, best of %d)\n\n", e.AudioSeconds, e.Kbps, e.Runs)
		w("| encoder | wall | CPU | × realtime | bytes |\n|---|---|---|---|---|\n")
		w("| ivrd (`audio.MP3Encoder`, in process) | %.3f s | %.3f s | %.0f | %d |\n", e.IvrdBestS, e.IvrdCPUS, e.IvrdXRealtime, e.IvrdBytes)
		w("| `%s` | %.3f s | %.3f s | %.0f | %d |\n", e.LameCommand, e.LameBestS, e.LameCPUS, e.LameXRealtime, e.LameBytes)
		w("\nIdentical output: %v (ivrd encodes long blocks only, which the command cannot be told: its `--noshort` is accepted and ignored); both decode at 8 kHz: %v.\n", e.SameBytes, e.BothDecodeOK)
	}
	if rep.Profile != "" {
		h := rep.headline()
		w("\n### Profiles\n\nCPU profile of ivrd over each step's window: `%s/cpu-N.pprof` (heap: `heap-N.pprof`, goroutines: `goroutines-N.txt`). Text summaries for the largest step that passed (%d calls) and the largest measured (`%s`): `profile-top-N.txt`, `profile-cum-N.txt`, `heap-top-N.txt`.\n", out, h.Calls, rep.Profile)
	}
	w("\n")
	return b.String()
}

// peerMarkdown renders the peer phase: the carrier stack on the capacity phase's load.
func peerMarkdown(w func(string, ...any), r *peerResult) {
	w("\n### Beside the carrier stack: Kamailio + rtpengine (userspace relay)\n\n")
	w("rtpengine %s and Kamailio %s from Debian, on loopback: sipp places the capacity phase's calls (%d at %.0f/s, each %s, 1 kHz PCMU for the whole call) through Kamailio (record-route, media anchored in rtpengine) to a sipp that answers and echoes every RTP packet, so rtpengine relays both directions of every call (`table=-1`: no kernel forwarding; `delete-delay=0`). CPU and memory are rtpengine's and Kamailio's (all %d processes) over a %.0f s window in which every call is up; memory is PSS growth over idle (shared pages divided among the processes that map them). rtpengine's recording daemon cannot run here: it needs rtpengine's kernel module, which this kernel cannot load, so only the relay is measured.\n\n",
		r.Rtpengine, r.Kamailio, r.Calls, r.Rate, fmtSecs(r.HoldS), r.KamailioProcesses, r.WindowS)
	w("| calls in window | rtpengine cores | CPU/call | Kamailio cores | CPU/call | PSS idle → loaded | PSS/call (rtpengine alone) | RSS/call | RTP packets relayed / expected | calls relayed both ways | failed calls | ivrd CPU/call (same calls) | ratio | sipp / answerer / other cores | pass |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	ivrd, ratio := "–", "–"
	if r.Ratio > 0 {
		ivrd, ratio = fmt.Sprintf("%.4f %% (%s)", r.IvrdCPUPerCallPct, r.IvrdStep), fmt.Sprintf("%.2f×", r.Ratio)
	}
	pass := "yes"
	if !r.Pass {
		pass = "**no**: " + r.Why
	}
	w("| %d | %.3f | %.4f %% | %.3f | %.4f %% | %.0f → %.0f MiB | %.1f KiB (%.1f KiB) | %.1f KiB | %d / %d | %d | %d | %s | %s | %.2f / %.2f / %.2f | %s |\n",
		r.CallsInWindow, r.RtpengineCores, r.RelayCPUPerCallPct, r.KamailioCores, r.KamailioCPUPerCallPct, r.PSSIdleMiB, r.PSSLoadedMiB,
		r.PSSPerCallKiB, r.RelayPSSPerCallKiB, r.RSSPerCallKiB, r.Relayed.Packets, r.ExpectedPackets, r.Relayed.BothWays,
		max(r.Calls-r.SippSuccessful, r.SippFailed), ivrd, ratio, r.SippCores, r.AnswererCores, r.OtherCores, pass)
}

// clusterFlat adds the cluster phase's headline numbers to latest.json's.
func clusterFlat(flat map[string]float64, c *clusterResult) {
	flat["cluster_calls"] = float64(c.Calls)
	flat["cluster_cpu_per_call_pct_sqlite_disk"] = round(c.SQLiteDisk.CPUPerCallPct, 4)
	flat["cluster_cpu_per_call_pct_postgres_s3"] = round(c.PostgresS3.CPUPerCallPct, 4)
	flat["cluster_postgres_cpu_per_call_pct"] = round(c.PostgresS3.BesideCPUPerCallPct[sidecarPostgres], 4)
	flat["cluster_s3_cpu_per_call_pct"] = round(c.PostgresS3.BesideCPUPerCallPct[sidecarS3], 4)
	if c.Ratio > 0 {
		flat["cluster_cpu_ratio_postgres_s3_vs_sqlite_disk"] = round(c.Ratio, 3)
		flat["cluster_cpu_ratio_with_servers"] = round(c.TotalRatio, 3)
	}
	if a := c.API; a != nil {
		flat["api_local_p50_ms"] = round(a.Local.P50Mean, 3)
		flat["api_local_p99_ms"] = round(a.Local.P99Mean, 3)
		flat["api_forwarded_p50_ms"] = round(a.Forwarded.P50Mean, 3)
		flat["api_forwarded_p99_ms"] = round(a.Forwarded.P99Mean, 3)
	}
}

// clusterMarkdown renders the cluster phase.
func clusterMarkdown(w func(string, ...any), c *clusterResult, out string) {
	r := c.SQLiteDisk
	w("\n### Cluster engines: PostgreSQL + S3 beside SQLite + disk\n\n")
	w("The same %d calls (at %.0f/s, each %s, monitored, prompts playing) against a fresh ivrd on SQLite and its data directory, then one on PostgreSQL %s (`scripts/pg.sh`) and %s, each measured over a %s window in which every call is up, as a capacity step. PostgreSQL's CPU is its process tree's (the postmaster and every backend), the S3 server's its process's. Profiles: `%s/cpu-%s-%d.pprof`, `cpu-%s-%d.pprof`.\n\n",
		c.Calls, r.Rate, fmtSecs(r.HoldS), c.Postgres, c.S3Server, fmtSecs(r.WindowS), out, backendSQLiteDisk, c.Calls, backendPostgresS3, c.Calls)
	w("| store + recordings | calls in window | ivrd cores | ivrd CPU/call | PostgreSQL CPU/call | S3 server CPU/call | all per call | mem/call | late or lost | failed calls | MP3 ok / bad (ffmpeg-checked) | notify p50 / p99 | other cores | pass |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		r    runResult
	}{{"SQLite + local disk", c.SQLiteDisk}, {"PostgreSQL + S3", c.PostgresS3}} {
		r := row.r
		pg, s3, all := "–", "–", r.CPUPerCallPct
		if v, ok := r.BesideCPUPerCallPct[sidecarPostgres]; ok {
			pg, all = fmt.Sprintf("%.4f %%", v), all+v
		}
		if v, ok := r.BesideCPUPerCallPct[sidecarS3]; ok {
			s3, all = fmt.Sprintf("%.4f %%", v), all+v
		}
		w("| %s | %d | %.2f | %.4f %% | %s | %s | %.4f %% | %.1f KiB | %.4f %% | %d | %d / %d (%d) | %.0f / %.0f ms | %.2f | %s |\n",
			row.name, r.MonitoredCalls, r.IvrdCores, r.CPUPerCallPct, pg, s3, all, r.MemPerCallKiB, r.RTP.LateOrLostPct,
			r.FailedCalls, r.MP3OK, r.MP3Bad, r.FFmpegChecked, r.NotifyP50ms, r.NotifyP99ms, r.OtherCores, passText(r))
	}
	if c.Ratio > 0 {
		w("\nivrd's CPU per call on PostgreSQL + S3 over SQLite + disk: **%.2f×** (%.2f× counting PostgreSQL's and the S3 server's CPU as well).\n", c.Ratio, c.TotalRatio)
	}
	if a := c.API; a != nil {
		w("\n### API latency through a cluster node (wrk, %d connection%s, %.0f s per run, runs alternating)\n\n", a.Connections, map[bool]string{true: "s"}[a.Connections != 1], a.Seconds)
		w("Two nodes on that PostgreSQL and S3 server with one `--cluster-secret`; one monitored call is up on node A, and wrk POSTs the API phase's Monitor request for its session (answered `%s`) to A, which carries the session, and to B, which finds the session's node in PostgreSQL and forwards the request to A, signed with the secret.\n\n", a.Status)
		w("| request | req/s per run | mean | p50 | p99 |\n|---|---|---|---|---|\n")
		w("| to node A (local) | %s | %.0f | %.3f ms | %.3f ms |\n", floats(a.Local.RPS), a.Local.RPSMean, a.Local.P50Mean, a.Local.P99Mean)
		w("| to node B (forwarded to A) | %s | %.0f | %.3f ms | %.3f ms |\n", floats(a.Forwarded.RPS), a.Forwarded.RPSMean, a.Forwarded.P50Mean, a.Forwarded.P99Mean)
		w("\nErrors (non-2xx answers, socket errors), all runs: %d.\n", a.Errors)
	}
}

func orDash(n int) string {
	if n == 0 {
		return "–"
	}
	return strconv.Itoa(n)
}

func passText(r runResult) string {
	s := "yes"
	if !r.Pass {
		s = "**no**: " + r.Why
	}
	if r.InterferedBadSeconds > 0 {
		s += fmt.Sprintf(" (other processes took up to %.2f cores in %d of the seconds with late frames)", r.InterferencePeak, r.InterferedBadSeconds)
	}
	return s
}

func fmtSecs(s float64) string {
	if s >= 60 && int(s)%60 == 0 {
		return fmt.Sprintf("%d min", int(s)/60)
	}
	return fmt.Sprintf("%.0f s", s)
}

func floats(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}
