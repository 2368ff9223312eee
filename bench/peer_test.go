package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

const rollup = `5583391e6000-7ffd92def000 ---p 00000000 00:00 0                          [rollup]
Rss:                1668 kB
Pss:                 296 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Shared_Clean:       1520 kB
Swap:                  0 kB
SwapPss:               0 kB
`

func TestParseSmapsRollup(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     memSample
		err      bool
	}{
		{"rollup", rollup, memSample{rssKiB: 1668, pssKiB: 296}, false},
		{"no pss", "Rss: 10 kB\nPss_Anon: 3 kB\n", memSample{}, true},
		{"no rss", "Pss: 10 kB\n", memSample{}, true},
		{"empty", "", memSample{}, true},
		{"other unit", "Rss: 10 MB\nPss: 3 kB\n", memSample{}, true},
		{"not a number", "Rss: ten kB\nPss: 3 kB\n", memSample{}, true},
		{"negative", "Rss: -1 kB\nPss: 3 kB\n", memSample{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSmapsRollup([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseSmapsRollup(f *testing.F) {
	f.Add([]byte(rollup))
	f.Add([]byte("Rss: 1 kB\nPss: 2 kB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSmapsRollup(b)
		if err == nil && (m.rssKiB < 0 || m.pssKiB < 0) {
			t.Fatalf("negative memory %+v", m)
		}
	})
}

// The harness's own memory and process group, read from /proc as the peer phase reads
// rtpengine's and Kamailio's.
func TestReadMemAndProcessGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("no /proc/self/smaps_rollup")
	}
	m, err := readMem([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if m.pssKiB <= 0 || m.pssKiB > m.rssKiB {
		t.Fatalf("PSS %d KiB, RSS %d KiB: want 0 < PSS <= RSS", m.pssKiB, m.rssKiB)
	}
	two, err := readMem([]int{os.Getpid(), os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if two.rssKiB < 2*m.rssKiB*9/10 {
		t.Fatalf("two readings add up to %d KiB RSS, one is %d", two.rssKiB, m.rssKiB)
	}
	pgid, err := syscall.Getpgid(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pid := range processGroup(pgid) {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Fatalf("process group %d does not list this process %d", pgid, os.Getpid())
	}
	if _, err := readMem([]int{1 << 30}); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}

func TestStatField(t *testing.T) {
	line := []byte("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 10 0 0 0 7 3 0 0 20 0 1 0 100 1000 50")
	for _, tc := range []struct {
		n    int
		want int64
		ok   bool
	}{
		{4, 1, true},    // ppid
		{5, 4242, true}, // pgrp
		{14, 7, true},   // utime
		{15, 3, true},   // stime
		{3, 0, false},   // state is not a number
		{2, 0, false},   // the command
		{99, 0, false},  // past the end
	} {
		got, ok := statField(line, tc.n)
		if ok != tc.ok || got != tc.want {
			t.Errorf("field %d = %d, %v; want %d, %v", tc.n, got, ok, tc.want, tc.ok)
		}
	}
}

const relayLog = `[1796029371.134171] INFO: [1-11913@127.0.0.1]: [core] Final packet stats:
[1796029371.134177] INFO: [1-11913@127.0.0.1]: [core] --- Tag '11913SIPpTag001', created 0:42 ago for branch ''
[1796029371.134193] INFO: [1-11913@127.0.0.1]: [core] ------ Media #1 (audio over RTP/AVP) using PCMU/8000
[1796029371.134200] INFO: [1-11913@127.0.0.1]: [core] --------- Port       127.0.0.1:20014 <>       127.0.0.1:40054, SSRC ca110000, 2100 p, 361200 b, 0 e, 0 ts
[1796029371.134216] INFO: [1-11913@127.0.0.1]: [core] --------- Port       127.0.0.1:20015 <>       127.0.0.1:47036 (RTCP), SSRC 0, 7 p, 0 b, 0 e, 42 ts
[1796029371.134221] INFO: [1-11913@127.0.0.1]: [core] --- Tag '11899SIPpTag011', created 0:42 ago for branch ''
[1796029371.134237] INFO: [1-11913@127.0.0.1]: [core] --------- Port       127.0.0.1:20000 <>       127.0.0.1:40726, SSRC ca110000, 2094 p, 360168 b, 0 e, 0 ts
[1796029371.134241] INFO: [1-11913@127.0.0.1]: [core] --------- Port       127.0.0.1:20001 <>       127.0.0.1:40727 (RTCP), SSRC 0, 0 p, 0 b, 0 e, 42 ts
[1796029372.135844] INFO: [2-11913@127.0.0.1]: [core] Final packet stats:
[1796029372.135881] INFO: [2-11913@127.0.0.1]: [core] --------- Port       127.0.0.1:20300 <>       127.0.0.1:40054, SSRC ca11000a, 2100 p, 361200 b, 0 e, 0 ts
[1796029372.135905] INFO: [2-11913@127.0.0.1]: [core] --------- Port       127.0.0.1:20280 <>       127.0.0.1:40726, SSRC 0, 0 p, 0 b, 0 e, 0 ts
[1796029372.200000] NOTICE: [3-11913@127.0.0.1]: [control] Received command 'delete' from 127.0.0.1:5060
`

func TestParseRelayStats(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     relayStats
		err      bool
	}{
		{"two calls, one relayed one way", relayLog, relayStats{Calls: 2, BothWays: 1, Packets: 2100 + 2094 + 2100}, false},
		{"nothing", "[1.0] INFO: [core] startup\n", relayStats{}, false},
		{"no count", "[1.0] INFO: [x]: [core] --------- Port 127.0.0.1:1 <> 127.0.0.1:2, SSRC 0\n", relayStats{}, true},
		{"bad count", "[1.0] INFO: [x]: [core] --------- Port 127.0.0.1:1 <> 127.0.0.1:2, SSRC 0, x p, 0 b\n", relayStats{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRelayStats(strings.NewReader(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseRelayStats(f *testing.F) {
	f.Add(relayLog)
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseRelayStats(strings.NewReader(s))
		if err == nil && (st.Packets < 0 || st.BothWays > st.Calls) {
			t.Fatalf("impossible stats %+v", st)
		}
	})
}

func TestPeerRatio(t *testing.T) {
	steps := []runResult{
		{Name: "capacity-500", Calls: 500, CPUPerCallPct: 0.12, Pass: true},
		{Name: "capacity-1000", Calls: 1000, CPUPerCallPct: 0.2, Pass: false},
		{Name: "capacity-1000 (again)", Calls: 1000, CPUPerCallPct: 0.1, Pass: true},
		{Name: "capacity-2000", Calls: 2000, CPUPerCallPct: 0.3, Pass: false},
	}
	for _, tc := range []struct {
		name  string
		steps []runResult
		calls int
		relay float64
		ratio float64
		step  string
	}{
		{"the step that passed", steps, 1000, 0.08, 1.25, "capacity-1000 (again)"},
		{"only a failed step", steps, 2000, 0.1, 3, "capacity-2000"},
		{"faster than the relay", steps, 500, 0.24, 0.5, "capacity-500"},
		{"no step of that size", steps, 750, 0.08, 0, ""},
		{"no relay figure", steps, 500, 0, 0, "capacity-500"},
		{"no steps", nil, 1000, 0.08, 0, ""},
		{"a step not measured", []runResult{{Name: "capacity-1000", Calls: 1000}}, 1000, 0.08, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ratio, step := peerRatio(tc.steps, tc.calls, tc.relay)
			name := ""
			if step != nil {
				name = step.Name
			}
			if name != tc.step || round(ratio, 6) != tc.ratio {
				t.Fatalf("got %v from %q, want %v from %q", ratio, name, tc.ratio, tc.step)
			}
		})
	}
}
