package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on Linux x86-64).
const clkTck = 100

// procSample is one reading of a process's CPU time and resident memory.
type procSample struct {
	at     time.Time
	cpu    time.Duration // user+system since the process started
	rssKiB int64
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	ut, ok1 := statField(b, 14)
	st, ok2 := statField(b, 15)
	if !ok1 || !ok2 {
		return s, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	s.cpu = time.Duration(ut+st) * time.Second / clkTck
	st2, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(st2))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			s.rssKiB = kb
		}
	}
	return s, nil
}

// readProcs adds up the CPU time and resident memory of the processes pids (a server and
// its workers).
func readProcs(pids []int) (procSample, error) {
	sum := procSample{at: time.Now()}
	for _, pid := range pids {
		s, err := readProc(pid)
		if err != nil {
			return sum, err
		}
		sum.cpu += s.cpu
		sum.rssKiB += s.rssKiB
	}
	return sum, nil
}

// readTrees reads the CPU time of each process of roots together with its descendants
// (PostgreSQL's postmaster and the backends it forks per connection), scanning /proc once.
// A root that is gone reads as a zero sample.
func readTrees(roots []int) []procSample {
	out := make([]procSample, len(roots))
	if len(roots) == 0 {
		return out
	}
	at := time.Now()
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	stats := make(map[int][]byte, len(paths))
	for _, path := range paths {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(path); err == nil { // else it has exited meanwhile
			stats[pid] = b
		}
	}
	for i, root := range roots {
		if cpu, ok := treeCPU(stats, root); ok {
			out[i] = procSample{at: at, cpu: cpu}
		}
	}
	return out
}

// treeCPU is the CPU time of process root and its descendants, from the /proc/<pid>/stat
// contents of every process (by pid): each one's own user+system time and that of the
// children it has waited for (cutime, cstime), so a child that exits between two readings
// still counts, in its parent's. It reports whether root is among stats.
func treeCPU(stats map[int][]byte, root int) (time.Duration, bool) {
	parent := make(map[int]int, len(stats))
	for pid, b := range stats {
		if pp, ok := statField(b, 4); ok {
			parent[pid] = int(pp)
		}
	}
	under := func(pid int) bool {
		for range 64 { // deeper than any real tree; ends a cycle of bad input
			if pid == root {
				return true
			}
			if pid = parent[pid]; pid == 0 {
				return false
			}
		}
		return false
	}
	var ticks int64
	found := false
	for pid, b := range stats {
		if !under(pid) {
			continue
		}
		found = found || pid == root
		for n := 14; n <= 17; n++ { // utime, stime, cutime, cstime
			v, _ := statField(b, n)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / clkTck, found
}

// readEach reads each group of processes (a failed reading is a zero sample).
func readEach(groups [][]int) []procSample {
	out := make([]procSample, len(groups))
	for i, g := range groups {
		out[i], _ = readProcs(g)
	}
	return out
}

// cpuShare is the share of one core (1.0 = a whole core) the process used between a and b.
func cpuShare(a, b procSample) float64 {
	d := b.at.Sub(a.at)
	if d <= 0 {
		return 0
	}
	return float64(b.cpu-a.cpu) / float64(d)
}

// machineSample reads /proc/stat's first line: total and idle jiffies of all CPUs.
type machineSample struct{ total, idle int64 }

func readMachine() machineSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var m machineSample
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		m.total += n
		if i == 3 || i == 4 { // idle, iowait
			m.idle += n
		}
	}
	return m
}

// busyCores is how many cores the whole machine kept busy between a and b.
func busyCores(a, b machineSample, cores int) float64 {
	dt := b.total - a.total
	if dt <= 0 {
		return 0
	}
	return float64(dt-(b.idle-a.idle)) / float64(dt) * float64(cores)
}

// freeTCP returns a loopback address with a free TCP port.
func freeTCP() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// freeUDP returns a loopback address with a free UDP port.
func freeUDP() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// freeSIP returns a loopback address whose port is free for both UDP and TCP: ivrd's --sip
// takes both (a UDP port alone may be another ivrd's HTTP port).
func freeSIP() (string, error) {
	for range 50 {
		addr, err := freeUDP()
		if err != nil {
			return "", err
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no loopback port free for both UDP and TCP")
}

// ivrd is one running `ivrd serve`.
type ivrd struct {
	bin, data        string
	env              []string // added to every ivrd command's environment (store, blob store, cluster secret)
	http, sip, pprof string
	appID, token     string
	cmd              *exec.Cmd
	exited           chan struct{}
	logPath          string
}

// number is the number the bench app owns (sipp dials it without the '+').
const number = "+6580000000"

// newIvrd creates a data directory with one app whose number notifies answerURL, and starts
// ivrd on fresh loopback ports (with the profiler on its own port when pprof is set). env is
// added to ivrd's environment: IVRD_* settings, S3 credentials.
func newIvrd(bin, dir, answerURL string, pprof bool, env []string) (*ivrd, error) {
	p := &ivrd{bin: bin, data: filepath.Join(dir, "data"), env: env, logPath: filepath.Join(dir, "ivrd.log"), exited: make(chan struct{})}
	out, err := p.command("app", "create", "--data", p.data, "--name", "bench").Output()
	if err != nil {
		return nil, fmt.Errorf("ivrd app create: %w", err)
	}
	var creds struct {
		AppID       string `json:"app_id"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(out, &creds); err != nil || creds.AppID == "" {
		return nil, fmt.Errorf("ivrd app create said %q: %v", out, err)
	}
	p.appID, p.token = creds.AppID, creds.AccessToken
	if out, err := p.command("number", "add", "--data", p.data, "--app", p.appID, "--number", number, "--notify-url", answerURL).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ivrd number add: %v: %s", err, out)
	}
	if err := p.serve(pprof); err != nil {
		return nil, err
	}
	return p, nil
}

// joinIvrd starts one more ivrd on the store that env names, serving the app an earlier one
// created there (another node of a cluster).
func joinIvrd(bin, dir string, env []string, appID, token string) (*ivrd, error) {
	p := &ivrd{bin: bin, data: filepath.Join(dir, "data"), env: env, logPath: filepath.Join(dir, "ivrd.log"), exited: make(chan struct{}),
		appID: appID, token: token}
	if err := os.MkdirAll(p.data, 0o755); err != nil {
		return nil, err
	}
	if err := p.serve(false); err != nil {
		return nil, err
	}
	return p, nil
}

// command is the ivrd command args with ivrd's environment.
func (p *ivrd) command(args ...string) *exec.Cmd {
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), p.env...)
	return cmd
}

// serve starts `ivrd serve` and waits until it answers.
func (p *ivrd) serve(pprof bool) error {
	var err error
	if p.http, err = freeTCP(); err != nil {
		return err
	}
	if p.sip, err = freeSIP(); err != nil {
		return err
	}
	args := []string{"serve", "--data", p.data, "--http", p.http, "--sip", p.sip,
		"--log-level", "warn", "--idle-timeout", "1h", "--demo-number", ""}
	if pprof {
		if p.pprof, err = freeTCP(); err != nil {
			return err
		}
		args = append(args, "--pprof", p.pprof)
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return err
	}
	p.cmd = p.command(args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	go func() { p.cmd.Wait(); logf.Close(); close(p.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + p.http + "/healthz")
		if err == nil {
			res.Body.Close()
			return nil
		}
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.logPath)
			return fmt.Errorf("ivrd exited at start: %s", tailText(string(b), 20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return fmt.Errorf("ivrd did not answer /healthz in 20 s")
		}
	}
}

func (p *ivrd) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits (SIGKILL after 20 s).
func (p *ivrd) stop() { stopProcess(p.cmd, p.exited, 20*time.Second) }

// stopProcess sends cmd's process SIGTERM and waits until exited is closed, sending SIGKILL
// after grace.
func stopProcess(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// logTail is the end of ivrd's log, for reports.
func (p *ivrd) logTail(lines int) string {
	b, _ := os.ReadFile(p.logPath)
	return tailText(string(b), lines)
}

// logLines counts log lines at level WARN and ERROR.
func (p *ivrd) logLevels() (warn, errs int) {
	b, _ := os.ReadFile(p.logPath)
	for line := range strings.Lines(string(b)) {
		switch {
		case strings.Contains(line, "level=WARN"):
			warn++
		case strings.Contains(line, "level=ERROR"):
			errs++
		}
	}
	return
}

// fetchProfile saves /debug/pprof/<what> from ivrd to path.
func (p *ivrd) fetchProfile(ctx context.Context, what, path string) error {
	if p.pprof == "" {
		return fmt.Errorf("pprof is off")
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.pprof+"/debug/pprof/"+what, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("pprof %s: HTTP %d", what, res.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadFrom(res.Body)
	return err
}

func tailText(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
