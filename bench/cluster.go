package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/testpg"
	"github.com/ivrd/ivrd/internal/tests3"
)

// The cluster phase measures what ivrd costs on the engines a cluster rests on: a throwaway
// PostgreSQL (scripts/pg.sh) for its store and versitygw (scripts/s3.sh, an S3 server over a
// directory) for its recordings, beside the embedded default, SQLite and the local disk, in the
// same run. The same monitored calls as a capacity step go to one ivrd on each; then two ivrd
// nodes share PostgreSQL and S3 with a cluster secret, and wrk sends the API phase's request for
// a session of node A to A itself (answered locally) and to node B (forwarded to A).

// Names of the two backends and of the sidecars measured beside ivrd.
const (
	backendSQLiteDisk = "sqlite-disk"
	backendPostgresS3 = "postgres-s3"
	sidecarPostgres   = "postgres"
	sidecarS3         = "s3"
)

// clusterResult is what the cluster phase measured.
type clusterResult struct {
	Calls      int       `json:"calls"`
	Postgres   string    `json:"postgres_version"`
	S3Server   string    `json:"s3_server"`
	SQLiteDisk runResult `json:"sqlite_disk"`
	PostgresS3 runResult `json:"postgres_s3"`
	// ivrd's CPU per call on PostgreSQL + S3 over its CPU per call on SQLite + disk, and the
	// same with PostgreSQL's and the S3 server's CPU added to ivrd's.
	Ratio      float64 `json:"cpu_ratio_postgres_s3_vs_sqlite_disk"`
	TotalRatio float64 `json:"cpu_ratio_with_servers"`

	API *clusterAPIResult `json:"api,omitempty"`
}

// clusterAPIResult is the API latency of requests a node answers itself and of requests it
// forwards to the node carrying the session.
type clusterAPIResult struct {
	Status      string     `json:"status"` // what both nodes answered the benchmarked request
	Connections int        `json:"connections"`
	Seconds     float64    `json:"seconds_per_run"`
	Local       apiLatency `json:"local"`
	Forwarded   apiLatency `json:"forwarded"`
	Errors      int        `json:"errors"` // non-2xx responses and socket errors, all runs
}

// apiLatency is what wrk measured for one target, per run and averaged over the runs.
type apiLatency struct {
	RPS     []float64 `json:"rps"`
	P50ms   []float64 `json:"p50_ms"`
	P99ms   []float64 `json:"p99_ms"`
	RPSMean float64   `json:"rps_mean"`
	P50Mean float64   `json:"p50_ms_mean"`
	P99Mean float64   `json:"p99_ms_mean"`
}

// add records one wrk run.
func (l *apiLatency) add(w wrkResult) {
	l.RPS, l.P50ms, l.P99ms = append(l.RPS, w.rps), append(l.P50ms, w.p50ms), append(l.P99ms, w.p99ms)
	l.RPSMean, l.P50Mean, l.P99Mean = mean(l.RPS), mean(l.P50ms), mean(l.P99ms)
}

// checkCluster says why the cluster phase cannot run here, or nil; it builds the S3 server
// first if need be (about a minute, once per machine).
func checkCluster() error {
	if why := testpg.Unavailable(); why != "" {
		return fmt.Errorf("the cluster phase runs PostgreSQL through scripts/pg.sh and cannot here: %s", why)
	}
	if err := tests3.Install(); err != nil {
		return fmt.Errorf("the cluster phase needs versitygw (scripts/s3.sh install): %w", err)
	}
	return nil
}

// clusterPhase runs the cluster phase: n monitored calls on SQLite + disk, the same on
// PostgreSQL + S3, then the API latency of two nodes.
func clusterPhase(ctx context.Context, o options, bin, work string, n int) (clusterResult, error) {
	res := clusterResult{Calls: n, S3Server: s3ServerName()}
	pg, err := testpg.New()
	if err != nil {
		return res, fmt.Errorf("postgres: %w", err)
	}
	defer pg.Stop()
	res.Postgres = pg.Version
	pgPID, err := pg.PID()
	if err != nil {
		return res, fmt.Errorf("postgres: %w", err)
	}
	s3dir := filepath.Join(work, "cluster-s3")
	if err := os.MkdirAll(s3dir, 0o755); err != nil {
		return res, err
	}
	s3, err := tests3.New(s3dir)
	if err != nil {
		return res, fmt.Errorf("s3 server: %w", err)
	}
	defer s3.Stop()

	rate, hold := stepLoad(o, n)
	for _, backend := range []string{backendSQLiteDisk, backendPostgresS3} {
		label := fmt.Sprintf("%s-%d", backend, n)
		cr := callRun{name: "cluster-" + label, n: n, rate: rate, hold: hold, settle: o.settle, window: o.window,
			profile: true, late: o.late, dir: filepath.Join(work, "cluster-"+label)}
		if backend == backendPostgresS3 {
			dsn, err := pg.Database("bench_calls")
			if err != nil {
				return res, err
			}
			cr.env = backendEnv(dsn, s3)
			cr.beside = []sidecar{{sidecarPostgres, pgPID}, {sidecarS3, s3.PID()}}
		}
		r, err := cr.run(ctx, bin, o.monitorMsg, o.playMsg)
		if err != nil {
			return res, fmt.Errorf("%s: %w", cr.name, err)
		}
		logResult(r)
		keepProfiles(cr.dir, o.out, label)
		if backend == backendSQLiteDisk {
			res.SQLiteDisk = r
		} else {
			res.PostgresS3 = r
		}
	}
	res.Ratio, res.TotalRatio = clusterRatios(res.SQLiteDisk, res.PostgresS3)
	log.Printf("cluster: CPU per call %.4f %% on SQLite + disk, %.4f %% on PostgreSQL + S3 (%.2f×; %.2f× with the servers' CPU)",
		res.SQLiteDisk.CPUPerCallPct, res.PostgresS3.CPUPerCallPct, res.Ratio, res.TotalRatio)

	api, err := clusterAPI(ctx, o, bin, work, pg, s3)
	if err != nil {
		return res, fmt.Errorf("cluster api: %w", err)
	}
	res.API = &api
	return res, nil
}

// s3ServerName names the S3 server with the version scripts/s3.sh builds.
func s3ServerName() string {
	b, _ := os.ReadFile("scripts/s3.sh")
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VERSION="); ok {
			return "versitygw " + strings.TrimSpace(v) + " (`scripts/s3.sh`)"
		}
	}
	return "versitygw (`scripts/s3.sh`)"
}

// backendEnv is ivrd's environment for a store on PostgreSQL (dsn) and recordings on s3.
func backendEnv(dsn string, s3 *tests3.Server) []string {
	return append([]string{config.EnvName("store") + "=" + dsn, config.EnvName("blob") + "=" + s3.BlobURL()}, s3.CredentialsEnv()...)
}

// clusterRatios compares CPU per call on PostgreSQL + S3 with SQLite + disk: ivrd's alone, and
// ivrd's with PostgreSQL's and the S3 server's added (0 when there is nothing to divide by).
func clusterRatios(sqlite, pgS3 runResult) (ivrd, total float64) {
	if sqlite.CPUPerCallPct <= 0 {
		return 0, 0
	}
	servers := 0.0
	for _, v := range pgS3.BesideCPUPerCallPct {
		servers += v
	}
	return pgS3.CPUPerCallPct / sqlite.CPUPerCallPct, (pgS3.CPUPerCallPct + servers) / sqlite.CPUPerCallPct
}

// clusterAPI starts two nodes on a fresh database of pg and on s3, sharing a cluster secret;
// one call is up on node A with its Monitor recording, and wrk POSTs the API phase's Monitor
// request for that session to A (local) and to B (forwarded to A), runs alternating, three
// each.
func clusterAPI(ctx context.Context, o options, bin, work string, pg *testpg.Server, s3 *tests3.Server) (clusterAPIResult, error) {
	res := clusterAPIResult{Connections: o.clusterConn, Seconds: o.apiDuration.Seconds()}
	dir := filepath.Join(work, "cluster-api")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	dsn, err := pg.Database("bench_api")
	if err != nil {
		return res, err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	env := append(backendEnv(dsn, s3), config.EnvName("cluster-secret")+"="+hex.EncodeToString(secret))
	call, err := newOneCall(o.monitorMsg)
	if err != nil {
		return res, err
	}
	defer call.close()
	nodeA, err := newIvrd(bin, filepath.Join(dir, "a"), call.app.answerURL(), false, env)
	if err != nil {
		return res, err
	}
	defer nodeA.stop()
	nodeB, err := joinIvrd(bin, filepath.Join(dir, "b"), env, nodeA.appID, nodeA.token)
	if err != nil {
		return res, err
	}
	defer nodeB.stop()
	body, err := call.start(ctx, nodeA, dir, 7*o.apiDuration+60*time.Second)
	if err != nil {
		return res, err
	}
	local, forwarded := "http://"+nodeA.http+monitorPath, "http://"+nodeB.http+monitorPath
	if res.Status, err = postStatus(local, body); err != nil || res.Status != ivr.StatusMonitorInProgress {
		return res, fmt.Errorf("node A answered %q, %v", res.Status, err)
	}
	// Node B answers for A's session once it has seen A's heartbeat: only A knows the session
	// is recording, so that answer is A's, forwarded.
	if err := untilStatus(forwarded, body, ivr.StatusMonitorInProgress, 15*time.Second); err != nil {
		return res, fmt.Errorf("node B: %w\n%s", err, nodeB.logTail(10))
	}
	script, err := wrkPostScript(dir, body)
	if err != nil {
		return res, err
	}
	for round := range 3 {
		for _, target := range []string{"local", "forwarded"} {
			u, l := local, &res.Local
			if target == "forwarded" {
				u, l = forwarded, &res.Forwarded
			}
			w, err := runWrk(ctx, script, u, o.clusterConn, o.apiDuration)
			if err != nil {
				return res, err
			}
			log.Printf("cluster api: round %d %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d", round+1, target, w.rps, w.p50ms, w.p99ms, w.errors)
			res.Errors += w.errors
			l.add(w)
		}
	}
	// The session must still be there and unharmed, on both nodes.
	for _, u := range []string{local, forwarded} {
		if st, err := postStatus(u, body); err != nil || st != ivr.StatusMonitorInProgress {
			return res, fmt.Errorf("after the runs %s answered %q, %v", u, st, err)
		}
	}
	return res, nil
}

// untilStatus sends body to u until the answer's status is want, for up to d.
func untilStatus(u, body, want string, d time.Duration) error {
	var st string
	var err error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if st, err = postStatus(u, body); err == nil && st == want {
			return nil
		}
	}
	if err == nil {
		err = errors.New("wrong status")
	}
	return fmt.Errorf("answered %q (want %q) for %v: %w", st, want, d, err)
}
