package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/ivr"
)

// statLine is a /proc/<pid>/stat line with the fields treeCPU reads (times in clock ticks).
func statLine(pid int, comm string, ppid int, utime, stime, cutime, cstime int64) []byte {
	return fmt.Appendf(nil, "%d (%s) S %d %d 0 0 -1 4194304 120 0 0 0 %d %d %d %d 20 0 1 0 4242 1000 200", pid, comm, ppid, pid, utime, stime, cutime, cstime)
}

func TestTreeCPU(t *testing.T) {
	// PostgreSQL as ps shows it: a postmaster, its backends and workers, one process
	// unrelated to it, and the postmaster's own parent (not counted).
	stats := map[int][]byte{
		1:   statLine(1, "init", 0, 500, 500, 9000, 9000),
		100: statLine(100, "su", 1, 1, 1, 0, 0),
		200: statLine(200, "postgres", 100, 10, 5, 300, 200), // the postmaster; cutime/cstime: backends that exited
		201: statLine(201, "postgres: checkpointer ", 200, 2, 1, 0, 0),
		202: statLine(202, "postgres: postgres bench_calls 127.0.0.1(4242) idle", 200, 40, 20, 0, 0),
		203: statLine(203, "weird) name (", 202, 7, 0, 0, 0), // a grandchild, with ')' in its name
		300: statLine(300, "ivrd", 1, 1000, 1000, 0, 0),
		// A cycle (bad input) must not hang or count.
		400: statLine(400, "a", 401, 50, 50, 0, 0),
		401: statLine(401, "b", 400, 50, 50, 0, 0),
	}
	tests := []struct {
		name  string
		root  int
		ticks int64
		found bool
	}{
		{"postmaster and descendants", 200, 10 + 5 + 300 + 200 + 2 + 1 + 40 + 20 + 7, true},
		{"a leaf", 203, 7, true},
		{"a process alone", 300, 2000, true},
		{"missing root", 999, 0, false},
		{"a cycle", 400, 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := treeCPU(stats, tt.root)
			if want := time.Duration(tt.ticks) * time.Second / clkTck; got != want || found != tt.found {
				t.Errorf("treeCPU(%d) = %v, %v; want %v, %v", tt.root, got, found, want, tt.found)
			}
		})
	}
	// A backend that exits between two readings still counts, in its parent's cutime.
	before, _ := treeCPU(stats, 200)
	after := map[int][]byte{}
	for pid, b := range stats {
		after[pid] = b
	}
	delete(after, 202)
	after[200] = statLine(200, "postgres", 100, 12, 5, 300+45, 200+20)
	after[203] = statLine(203, "weird) name (", 1, 7, 0, 0, 0)
	got, _ := treeCPU(after, 200)
	// The backend's 40+20 ticks moved to the postmaster, which reaped it after 5 more ticks of
	// its user time; the postmaster itself used 2 more; 203, the backend's child, went to init.
	if want := before + time.Duration(2+5-7)*time.Second/clkTck; got != want {
		t.Errorf("after the backend exited: %v, want %v", got, want)
	}
}

func FuzzTreeCPU(f *testing.F) {
	f.Add(statLine(7, "postgres", 1, 1, 2, 3, 4), statLine(8, "x", 7, 5, 6, 7, 8))
	f.Add([]byte("7 (a) S"), []byte(")))"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		got, found := treeCPU(map[int][]byte{7: a, 8: b}, 7)
		if !found || got < 0 && !strings.Contains(string(a)+string(b), "-") {
			t.Errorf("treeCPU = %v, %v", got, found)
		}
	})
}

// wrkOutput is what wrk 4.1 prints with --latency.
const wrkOutput = `Running 10s test @ http://127.0.0.1:41234/open/ivr/middle/monitor
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   312.50us  150.02us   9.81ms   50.00%
    Req/Sec     3.21k   210.33     3.50k    77.00%
  Latency Distribution
     50%  287.00us
     75%  330.00us
     90%  402.00us
     99%    1.25ms
  32010 requests in 10.00s, 5.19MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   3200.91
Transfer/sec:    531.20KB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    wrkResult
		wantErr bool
	}{
		{"microseconds and milliseconds, errors", wrkOutput, wrkResult{rps: 3200.91, p50ms: 0.287, p99ms: 1.25, errors: 7}, false},
		{"seconds", strings.NewReplacer("287.00us", "1.50s", "1.25ms", "2.00s", "  Socket errors: connect 0, read 1, write 0, timeout 2\n", "",
			"  Non-2xx or 3xx responses: 4\n", "").Replace(wrkOutput), wrkResult{rps: 3200.91, p50ms: 1500, p99ms: 2000}, false},
		{"no distribution", "Requests/sec:   10.5\n", wrkResult{rps: 10.5}, false},
		{"no requests line", "unable to connect to 127.0.0.1:1 Connection refused\n", wrkResult{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
			if !near(got.rps, tt.want.rps) || !near(got.p50ms, tt.want.p50ms) || !near(got.p99ms, tt.want.p99ms) || got.errors != tt.want.errors {
				t.Errorf("parseWrk = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseWrk(f *testing.F) {
	f.Add(wrkOutput)
	f.Add("Requests/sec: 1\n 50% 1us\n 99% 2s\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseWrk(s)
		if err == nil && !strings.Contains(s, "Requests/sec:") {
			t.Errorf("parsed %q without a Requests/sec line: %+v", s, r)
		}
		if r.rps < 0 || r.p50ms < 0 || r.p99ms < 0 {
			t.Errorf("negative figures from %q: %+v", s, r)
		}
	})
}

func TestClusterRatios(t *testing.T) {
	sqlite := runResult{CPUPerCallPct: 0.10}
	pg := runResult{CPUPerCallPct: 0.15, BesideCPUPerCallPct: map[string]float64{sidecarPostgres: 0.04, sidecarS3: 0.01}}
	tests := []struct {
		name         string
		sqlite, pg   runResult
		ivrd, totals float64
	}{
		{"both measured", sqlite, pg, 1.5, 2.0},
		{"no servers measured", sqlite, runResult{CPUPerCallPct: 0.05}, 0.5, 0.5},
		{"nothing to divide by", runResult{}, pg, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ivrd, total := clusterRatios(tt.sqlite, tt.pg)
			if math.Abs(ivrd-tt.ivrd) > 1e-9 || math.Abs(total-tt.totals) > 1e-9 {
				t.Errorf("clusterRatios = %v, %v; want %v, %v", ivrd, total, tt.ivrd, tt.totals)
			}
		})
	}
}

func TestClusterResults(t *testing.T) {
	c := &clusterResult{Calls: 500, Postgres: "15.14", S3Server: "versitygw",
		SQLiteDisk: runResult{Name: "cluster-sqlite-disk-500", MonitoredCalls: 500, CPUPerCallPct: 0.1, Pass: true},
		PostgresS3: runResult{Name: "cluster-postgres-s3-500", MonitoredCalls: 500, CPUPerCallPct: 0.15, Pass: true,
			BesideCPUPerCallPct: map[string]float64{sidecarPostgres: 0.04, sidecarS3: 0.01}},
		API: &clusterAPIResult{Status: ivr.StatusMonitorInProgress, Connections: 1, Seconds: 10}}
	c.Ratio, c.TotalRatio = clusterRatios(c.SQLiteDisk, c.PostgresS3)
	c.API.Local.add(wrkResult{rps: 4000, p50ms: 0.2, p99ms: 0.5})
	c.API.Local.add(wrkResult{rps: 5000, p50ms: 0.3, p99ms: 0.7})
	c.API.Forwarded.add(wrkResult{rps: 2000, p50ms: 0.5, p99ms: 1.5})

	flat := map[string]float64{}
	clusterFlat(flat, c)
	for k, want := range map[string]float64{
		"cluster_calls":                                500,
		"cluster_cpu_per_call_pct_sqlite_disk":         0.1,
		"cluster_cpu_per_call_pct_postgres_s3":         0.15,
		"cluster_postgres_cpu_per_call_pct":            0.04,
		"cluster_s3_cpu_per_call_pct":                  0.01,
		"cluster_cpu_ratio_postgres_s3_vs_sqlite_disk": 1.5,
		"cluster_cpu_ratio_with_servers":               2,
		"api_local_p50_ms":                             0.25,
		"api_local_p99_ms":                             0.6,
		"api_forwarded_p50_ms":                         0.5,
		"api_forwarded_p99_ms":                         1.5,
	} {
		if got, ok := flat[k]; !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("latest.json %s = %v (present %v), want %v", k, got, ok, want)
		}
	}

	var b strings.Builder
	clusterMarkdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, c, "bench/results")
	md := b.String()
	for _, want := range []string{
		"| SQLite + local disk | 500 | 0.00 | 0.1000 % | – | – | 0.1000 % |",
		"| PostgreSQL + S3 | 500 | 0.00 | 0.1500 % | 0.0400 % | 0.0100 % | 0.2000 % |",
		"**1.50×** (2.00× counting",
		"wrk, 1 connection, 10 s per run",
		"| to node A (local) | 4000, 5000 | 4500 | 0.250 ms | 0.600 ms |",
		"| to node B (forwarded to A) | 2000 | 2000 | 0.500 ms | 1.500 ms |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
