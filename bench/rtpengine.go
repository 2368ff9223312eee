package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// rtpengine is one running rtpengine (Debian rtpengine-daemon) relaying media in userspace.
type rtpengine struct {
	ngPort  int
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// rtpenginePorts is the range rtpengine takes its media ports from: below Linux's ephemeral
// range (32768–60999), where the ports other programs bind to port 0 come from, and wide
// enough for 2,000 calls (four ports a call: RTP and RTCP on each side).
const rtpenginePortMin, rtpenginePortMax = 20000, 29999

// rtpengineConfig is its configuration: no kernel forwarding (table = -1: this kernel has no
// rtpengine module), calls forgotten as soon as they are deleted (delete-delay = 0; the
// default keeps them 30 s after BYE), and at log level 6 each call's packet counts when it
// ends (read by relayedPackets).
func rtpengineConfig(ngPort int) string {
	return fmt.Sprintf(`[rtpengine]
table = -1
interface = 127.0.0.1
listen-ng = 127.0.0.1:%d
port-min = %d
port-max = %d
delete-delay = 0
timeout = 60
log-level = 6
log-stderr = true
foreground = true
`, ngPort, rtpenginePortMin, rtpenginePortMax)
}

// startRtpengine writes its configuration to dir and runs it in the foreground.
func startRtpengine(dir string) (*rtpengine, error) {
	ng, err := freeUDP()
	if err != nil {
		return nil, err
	}
	_, p, _ := strings.Cut(ng, ":")
	r := &rtpengine{logPath: filepath.Join(dir, "rtpengine.log"), exited: make(chan struct{})}
	r.ngPort, _ = strconv.Atoi(p)
	conf := filepath.Join(dir, "rtpengine.conf")
	if err := os.WriteFile(conf, []byte(rtpengineConfig(r.ngPort)), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(r.logPath)
	if err != nil {
		return nil, err
	}
	r.cmd = exec.Command("rtpengine", "--config-file="+conf, "--config-section=rtpengine", "--pidfile="+filepath.Join(dir, "rtpengine.pid"))
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = r.cmd.Wait(); logf.Close(); close(r.exited) }()
	if err := testpeer.WaitListening(r.ngPort, r.exited, 10*time.Second); err != nil {
		r.stop()
		b, _ := os.ReadFile(r.logPath)
		return nil, fmt.Errorf("rtpengine: %w\n%s", err, tailText(string(b), 20))
	}
	return r, nil
}

func (r *rtpengine) pid() int { return r.cmd.Process.Pid }

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (r *rtpengine) stop() { stopProcess(r.cmd, r.exited, 10*time.Second) }

// relayStats is what rtpengine's log says it relayed: at log level 6 each call's "Final
// packet stats" list, per side, the RTP packets it received there (and so relayed to the
// other side).
type relayStats struct {
	Calls    int   `json:"calls"`           // calls with packet stats
	BothWays int   `json:"calls_both_ways"` // calls with RTP received from both sides
	Packets  int64 `json:"rtp_packets"`     // RTP packets received, all calls and sides
}

// parseRelayStats reads rtpengine's log: lines like
//
//	[1796029371.134200] INFO: [1-11913@127.0.0.1]: [core] --------- Port       127.0.0.1:20014 <>       127.0.0.1:40054, SSRC ca110000, 2100 p, 361200 b, 0 e, 0 ts
//
// (RTCP ports, marked "(RTCP)", are left out).
func parseRelayStats(r io.Reader) (relayStats, error) {
	var st relayStats
	sides := map[string]int{} // call-ID -> sides with packets
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		_, rest, ok := strings.Cut(line, "] INFO: [")
		if !ok {
			continue
		}
		callID, rest, ok := strings.Cut(rest, "]: [core] --------- Port ")
		if !ok || strings.Contains(rest, "(RTCP)") {
			continue
		}
		var pkts int64 = -1
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutSuffix(strings.TrimSpace(f), " p"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					return st, fmt.Errorf("rtpengine log: bad packet count in %q", line)
				}
				pkts = n
			}
		}
		if pkts < 0 {
			return st, fmt.Errorf("rtpengine log: no packet count in %q", line)
		}
		if _, seen := sides[callID]; !seen {
			sides[callID] = 0
			st.Calls++
		}
		if pkts > 0 {
			sides[callID]++
			if sides[callID] == 2 {
				st.BothWays++
			}
		}
		st.Packets += pkts
	}
	return st, sc.Err()
}

// relayed reads the packet stats of the calls rtpengine has ended so far.
func (r *rtpengine) relayed() (relayStats, error) {
	f, err := os.Open(r.logPath)
	if err != nil {
		return relayStats{}, err
	}
	defer f.Close()
	return parseRelayStats(f)
}
