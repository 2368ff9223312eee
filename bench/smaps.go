package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// memSample is the memory of a set of processes: resident (RSS: shared pages counted in
// every process that maps them) and proportional (PSS: each shared page divided among the
// processes that map it, so that the PSS of a set of forked workers adds up to what they
// really hold).
type memSample struct {
	rssKiB, pssKiB int64
}

// parseSmapsRollup reads the Rss and Pss lines of /proc/<pid>/smaps_rollup.
func parseSmapsRollup(b []byte) (memSample, error) {
	var m memSample
	var haveRSS, havePSS bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "Rss" && name != "Pss" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("smaps_rollup: bad %s line %q", name, sc.Text())
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || v < 0 {
			return m, fmt.Errorf("smaps_rollup: bad %s value %q", name, f[0])
		}
		if name == "Rss" {
			m.rssKiB, haveRSS = v, true
		} else {
			m.pssKiB, havePSS = v, true
		}
	}
	if !haveRSS || !havePSS {
		return m, fmt.Errorf("smaps_rollup: no Rss or Pss line")
	}
	return m, nil
}

// readMem adds up the memory of the processes pids.
func readMem(pids []int) (memSample, error) {
	var sum memSample
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			return sum, err
		}
		m, err := parseSmapsRollup(b)
		if err != nil {
			return sum, fmt.Errorf("pid %d: %w", pid, err)
		}
		sum.rssKiB += m.rssKiB
		sum.pssKiB += m.pssKiB
	}
	return sum, nil
}

// processGroup lists the processes whose process group is pgid (a server started in its own
// group, with the workers it forked).
func processGroup(pgid int) []int {
	var pids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if g, ok := statField(b, 5); ok && g == int64(pgid) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// statField is field n (1-based, as in proc(5)) of a /proc/<pid>/stat line, for n ≥ 3: the
// command name (field 2) may contain spaces, so fields are counted after its ')'.
func statField(b []byte, n int) (int64, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || n < 3 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < n-2 {
		return 0, false
	}
	v, err := strconv.ParseInt(f[n-3], 10, 64)
	return v, err == nil
}
