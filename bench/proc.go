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

// ivrd is one running `ivrd serve`.
type ivrd struct {
	bin, data        string
	http, sip, pprof string
	appID, token     string
	cmd              *exec.Cmd
	exited           chan struct{}
	logPath          string
}

// number is the number the bench app owns (sipp dials it without the '+').
const number = "+6580000000"

// newIvrd creates a data directory with one app whose number notifies answerURL, and starts
// ivrd on fresh loopback ports (with the profiler on its own port when pprof is set).
func newIvrd(bin, dir, answerURL string, pprof bool, extra ...string) (*ivrd, error) {
	p := &ivrd{bin: bin, data: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "ivrd.log"), exited: make(chan struct{})}
	out, err := exec.Command(bin, "app", "create", "--data", p.data, "--name", "bench").Output()
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
	if out, err := exec.Command(bin, "number", "add", "--data", p.data, "--app", p.appID, "--number", number, "--notify-url", answerURL).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ivrd number add: %v: %s", err, out)
	}
	if p.http, err = freeTCP(); err != nil {
		return nil, err
	}
	if p.sip, err = freeUDP(); err != nil {
		return nil, err
	}
	args := []string{"serve", "--data", p.data, "--http", p.http, "--sip", p.sip,
		"--log-level", "warn", "--idle-timeout", "1h", "--demo-number", ""}
	if pprof {
		if p.pprof, err = freeTCP(); err != nil {
			return nil, err
		}
		args = append(args, "--pprof", p.pprof)
	}
	args = append(args, extra...)
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { p.cmd.Wait(); logf.Close(); close(p.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + p.http + "/healthz")
		if err == nil {
			res.Body.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.logPath)
			return nil, fmt.Errorf("ivrd exited at start: %s", tailText(string(b), 20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("ivrd did not answer /healthz in 20 s")
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
