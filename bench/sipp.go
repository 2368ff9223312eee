package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// Caller audio: a 1 kHz tone that sipp loops for the whole call (rtp_stream, PCMU), which
// every recording must then contain.
const (
	toneHz  = 1000
	toneAmp = 6000
)

// writeTone writes the caller's audio as a headerless µ-law file for sipp's rtp_stream. Its
// length is a whole number of tone periods and 20 ms frames, so the loop is seamless.
func writeTone(path string) error {
	pcm := audio.SineWave(toneHz, 2*time.Second, toneAmp)
	return os.WriteFile(path, audio.EncodeUlaw(nil, pcm), 0o644)
}

// fromUser is the caller number of call i (ivrd reports it as "+" + this).
func fromUser(i int) string { return strconv.Itoa(6590000000 + i) }

// sippRun is one sipp process placing n calls.
type sippRun struct {
	dir, trace, stat, stdout string
	cmd                      *exec.Cmd
	done                     chan error
	start                    time.Time
}

// startSipp places n calls at rate per second, call i from fromUser(i), all with RTP to
// rtpPort.
func startSipp(ctx context.Context, dir, target string, n int, rate float64, hold time.Duration, rtpPort int) (*sippRun, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tone := filepath.Join(dir, "tone.pcmu")
	if err := writeTone(tone); err != nil {
		return nil, err
	}
	sf := filepath.Join(dir, "caller.xml")
	if err := os.WriteFile(sf, []byte(testpeer.LoopScenario(tone, hold, rtpPort)), 0o644); err != nil {
		return nil, err
	}
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for i := range n {
		fmt.Fprintf(&inf, "%s;\n", fromUser(i))
	}
	inff := filepath.Join(dir, "calls.csv")
	if err := os.WriteFile(inff, []byte(inf.String()), 0o644); err != nil {
		return nil, err
	}
	sp, err := freeUDP()
	if err != nil {
		return nil, err
	}
	_, spPort, _ := strings.Cut(sp, ":")
	mp, err := freeUDP()
	if err != nil {
		return nil, err
	}
	_, mpPort, _ := strings.Cut(mp, ":")
	r := &sippRun{dir: dir, trace: filepath.Join(dir, "messages.log"), stat: filepath.Join(dir, "stat.csv"),
		stdout: filepath.Join(dir, "sipp.out"), done: make(chan error, 1)}
	// Whole-run timeout: the ramp, the calls, and a minute to spare.
	ramp := time.Duration(float64(n)/rate*float64(time.Second)) + time.Second
	timeout := ramp + hold + 60*time.Second
	rateInt := max(int(rate+0.5), 1)
	args := []string{"-sf", sf, "-inf", inff, "-s", strings.TrimPrefix(number, "+"),
		"-m", strconv.Itoa(n), "-l", strconv.Itoa(n), "-r", strconv.Itoa(rateInt), "-rp", "1000",
		"-nostdin", "-aa", "-i", "127.0.0.1", "-p", spPort, "-mi", "127.0.0.1", "-mp", mpPort,
		"-max_socket", "100000", "-trace_msg", "-message_file", r.trace,
		"-trace_stat", "-stf", r.stat, "-fd", "1",
		"-timeout", strconv.Itoa(int(timeout/time.Second)) + "s", "-timeout_error",
		target}
	out, err := os.Create(r.stdout)
	if err != nil {
		return nil, err
	}
	r.cmd = exec.CommandContext(ctx, "nice", append([]string{"-n", strconv.Itoa(loadNice), "sipp"}, args...)...)
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = out, out
	r.cmd.WaitDelay = 5 * time.Second
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	go func() { err := r.cmd.Wait(); out.Close(); r.done <- err }()
	return r, nil
}

// wait waits until sipp has exited (logging how, if it failed) or ctx ends.
func (r *sippRun) wait(ctx context.Context, name string) error {
	select {
	case err := <-r.done:
		if err != nil {
			log.Printf("%s: sipp: %v (see %s)", name, err, r.stdout)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sippCounts reads the last line of sipp's statistics file.
type sippCounts struct {
	Created, Current, Successful, Failed int
	FailedReasons                        map[string]int
}

func (r *sippRun) counts() (sippCounts, error) {
	var c sippCounts
	f, err := os.Open(r.stat)
	if err != nil {
		return c, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	var header, last []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, err
		}
		if header == nil {
			header = rec
			continue
		}
		last = rec
	}
	if last == nil {
		return c, fmt.Errorf("sipp statistics: no data")
	}
	c.FailedReasons = map[string]int{}
	for i, h := range header {
		if i >= len(last) {
			break
		}
		v, _ := strconv.Atoi(strings.TrimSpace(last[i]))
		switch h {
		case "TotalCallCreated":
			c.Created = v
		case "CurrentCall":
			c.Current = v
		case "SuccessfulCall(C)":
			c.Successful = v
		case "FailedCall(C)":
			c.Failed = v
		default:
			if strings.HasPrefix(h, "Failed") && strings.HasSuffix(h, "(C)") && v > 0 {
				c.FailedReasons[strings.TrimSuffix(h, "(C)")] = v
			}
		}
	}
	return c, nil
}

// traceInfo is what sipp's message trace tells: when each call's BYE left (by From user),
// and which RTP port ivrd answered each call with (its 200 OK's m=audio).
type traceInfo struct {
	bye   map[string]time.Time
	media map[uint16]string
}

func (r *sippRun) readTrace() (traceInfo, error) {
	ti := traceInfo{bye: map[string]time.Time{}, media: map[uint16]string{}}
	f, err := os.Open(r.trace)
	if err != nil {
		return ti, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var at time.Time
	var sent, received, bye, ok200 bool
	var from string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "----------------------------------------------- "):
			at, _ = time.ParseInLocation("2006-01-02 15:04:05.000000", strings.TrimSpace(strings.TrimLeft(line, "-")), time.Local)
			sent, received, bye, ok200, from = false, false, false, false, ""
		case strings.Contains(line, " message sent "):
			sent = true
		case strings.Contains(line, " message received "):
			received = true
		case sent && strings.HasPrefix(line, "BYE "):
			bye = true
		case received && strings.HasPrefix(line, "SIP/2.0 200 "):
			ok200 = true
		case strings.HasPrefix(line, "From:"):
			from = line
			if i := strings.Index(from, "sip:"); i >= 0 {
				from = from[i+4:]
			}
			from, _, _ = strings.Cut(from, "@")
			if bye {
				if _, dup := ti.bye[from]; !dup {
					ti.bye[from] = at
				}
			}
		case ok200 && from != "" && strings.HasPrefix(line, "m=audio "):
			f := strings.Fields(line)
			if len(f) >= 2 {
				if p, err := strconv.Atoi(f[1]); err == nil {
					ti.media[uint16(p)] = from
				}
			}
		}
	}
	return ti, sc.Err()
}
