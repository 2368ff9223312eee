package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/testpeer"
)

// floodEnv makes the test binary a flood helper process instead of running tests: one
// process can hold only so many connections (its open-file limit), so a flood of 20,000 slow
// clients runs in several. Its value is a JSON floodSpec; the process prints a floodStats.
const floodEnv = "IVRD_E2E_FLOOD"

type floodSpec struct {
	Addr     string        // ivrd's HTTP address
	Conns    int           // connections to keep open
	Every    time.Duration // one body byte per connection this often
	Duration time.Duration // then exit
}

type floodStats struct {
	Dialled   int64 // connections opened
	Closed    int64 // found closed by ivrd (then opened again)
	DialFails int64
	MaxOpen   int64
}

// floodMain is the helper process: Conns slow clients posting a large body to the API a byte
// every Every, each connecting again when it finds its connection closed.
func floodMain(raw string) int {
	var spec floodSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		return 2
	}
	// The attackers stand for other machines: on this shared one they must not take the
	// CPU that ivrd and the health checks need, so they run at the lowest priority.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, 0, 19)
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	var st floodStats
	var open atomic.Int64
	stop := time.Now().Add(spec.Duration)
	head := []byte("POST /open/ivr/middle/play HTTP/1.1\r\nHost: ivrd\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\na")
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // dials in flight
	for i := range spec.Conns {
		wg.Go(func() {
			// Spread the first byte of every connection over the period, as real clients would be.
			time.Sleep(time.Duration(i) * spec.Every / time.Duration(spec.Conns))
			for time.Now().Before(stop) {
				sem <- struct{}{}
				c, err := net.DialTimeout("tcp", spec.Addr, 10*time.Second)
				<-sem
				if err != nil {
					atomic.AddInt64(&st.DialFails, 1)
					time.Sleep(time.Second)
					continue
				}
				atomic.AddInt64(&st.Dialled, 1)
				n := open.Add(1)
				for m := atomic.LoadInt64(&st.MaxOpen); n > m && !atomic.CompareAndSwapInt64(&st.MaxOpen, m, n); m = atomic.LoadInt64(&st.MaxOpen) {
				}
				_, err = c.Write(head)
				for err == nil && time.Now().Before(stop) {
					time.Sleep(min(spec.Every, time.Until(stop)))
					_, err = c.Write([]byte("a"))
				}
				c.Close()
				open.Add(-1)
				if err != nil {
					atomic.AddInt64(&st.Closed, 1)
				}
			}
		})
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(st)
	return 0
}

// startFlood runs total slow clients against addr in helper processes for d and returns a
// function waiting for their stats.
func startFlood(t *testing.T, addr string, total int, every, d time.Duration) func() floodStats {
	t.Helper()
	const procs = 2
	var outs []*bytes.Buffer
	var cmds []*exec.Cmd
	for i := range procs {
		spec, _ := json.Marshal(floodSpec{Addr: addr, Conns: total/procs + boolInt(i < total%procs), Every: every, Duration: d})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), floodEnv+"="+string(spec))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	return func() floodStats {
		var sum floodStats
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("flood process: %v: %s", err, outs[i])
			}
			var st floodStats
			if err := json.Unmarshal(outs[i].Bytes(), &st); err != nil {
				t.Fatalf("flood stats %q: %v", outs[i], err)
			}
			sum.Dialled += st.Dialled
			sum.Closed += st.Closed
			sum.DialFails += st.DialFails
			sum.MaxOpen += st.MaxOpen
		}
		return sum
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// healthWatch polls /healthz every 250 ms over fresh connections until stop is closed and
// reports the slowest answer and every failure (an answer must come within 1 s).
func healthWatch(addr string, stop <-chan struct{}) (slowest func() time.Duration, failures func() []string) {
	var mu sync.Mutex
	var worst time.Duration
	var fails []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		var dialled atomic.Int64 // ns the last dial took
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				t0 := time.Now()
				conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				dialled.Store(int64(time.Since(t0)))
				return conn, err
			}}}
		for {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			t0 := time.Now()
			res, err := c.Get("http://" + addr + "/healthz")
			d := time.Since(t0)
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || string(b) != "ok\n" {
					err = fmt.Errorf("HTTP %d %q", res.StatusCode, b)
				}
			}
			if os.Getenv("IVRD_E2E_VERBOSE") != "" {
				fmt.Fprintf(os.Stderr, "healthz %s %v (dial %v) %v\n", t0.Format("15:04:05.000"), d.Round(time.Millisecond),
					time.Duration(dialled.Load()).Round(time.Millisecond), err)
			}
			mu.Lock()
			worst = max(worst, d)
			if err != nil {
				fails = append(fails, fmt.Sprintf("%s: %v", t0.Format("15:04:05.000"), err))
			}
			mu.Unlock()
		}
	}()
	wait := func() { <-done }
	return func() time.Duration { wait(); mu.Lock(); defer mu.Unlock(); return worst },
		func() []string { wait(); mu.Lock(); defer mu.Unlock(); return fails }
}

// slowProbe sends a request whose body trickles a byte a second and returns when ivrd closes
// the connection, with how long that took.
func slowProbe(addr string) <-chan time.Duration {
	ch := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			ch <- 0
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /open/ivr/middle/play HTTP/1.1\r\nHost: ivrd\r\nContent-Length: 1000\r\n\r\na")
		closed := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(closed) }()
		for {
			select {
			case <-closed:
				ch <- time.Since(t0)
				return
			case <-time.After(time.Second):
				c.Write([]byte("a"))
			}
		}
	}()
	return ch
}

// TestSlowClients: 20,000 slow clients (a body byte every 10 s, connecting again when cut off)
// against an ivrd whose open-file limit is 20,000 (so its default connection cap is 10,000):
// /healthz answers within 1 s throughout, a request body that takes longer than 30 s is cut,
// and a call placed during the flood reaches its app, which drives it over the API.
func TestSlowClients(t *testing.T) {
	runSlowClients(t, 45*time.Second)
}

func runSlowClients(t *testing.T, d time.Duration) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is needed to give ivrd a known open-file limit")
	}
	data := t.TempDir() + "/data"
	a := newAppOn(t, data, number)
	p := startIvrdUnder(t, []string{"prlimit", "--nofile=20000:20000", "--"}, data, "", "", strings.Fields(os.Getenv("IVRD_E2E_FLOOD_ARGS"))...)
	a.ivrd = "http://" + p.http
	if log := p.log(); !strings.Contains(log, "max_conns=10000") {
		t.Fatalf("default connection cap is not half of 20,000:\n%s", log)
	}

	stats := startFlood(t, p.http, 20000, 10*time.Second, d)
	stop := make(chan struct{})
	slowest, failures := healthWatch(p.http, stop)
	probe := slowProbe(p.http)

	// Let the flood build up, then call in: the app must get the call and drive it.
	time.Sleep(min(d/3, 15*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resc := peerCall(ctx, t, testpeer.Call{Target: p.sip, Number: strings.TrimPrefix(number, "+"), From: callerNum, Timeout: 40 * time.Second})
	ans := a.next(15 * time.Second)
	sid := ans.params.Get("session")
	if st := apiCall(t, a, "middle/play", url.Values{"session": {sid}, "msg": {"Hello."}, "notify_url": {a.url("/play")}}); st != "success_ok" {
		t.Fatalf("play during the flood: %s", st)
	}
	if n := a.next(15 * time.Second); n.params.Get("ivr_block") != "play" {
		t.Fatalf("play notification: %v", n.params)
	}
	if st := apiCall(t, a, "end/hangup", url.Values{"session": {sid}}); st != "success_ok" {
		t.Fatalf("hangup during the flood: %s", st)
	}
	if res := <-resc; !res.Answered || !res.ByeFromServer {
		t.Fatalf("call during the flood: answered %v, BYE from ivrd %v", res.Answered, res.ByeFromServer)
	}

	select {
	case took := <-probe:
		if took < 29*time.Second || took > 35*time.Second {
			t.Errorf("a body trickling a byte a second was cut after %v, want 30 s", took.Round(time.Millisecond))
		}
	case <-time.After(d):
		t.Error("a body trickling a byte a second was never cut")
	}
	st := stats()
	close(stop)
	if os.Getenv("IVRD_E2E_VERBOSE") != "" {
		t.Logf("ivrd log:\n%s", p.log())
	}
	t.Logf("flood: %d connections opened, %d found closed by ivrd, %d dial failures, up to %d open; slowest /healthz %v",
		st.Dialled, st.Closed, st.DialFails, st.MaxOpen, slowest().Round(time.Millisecond))
	if f := failures(); len(f) > 0 {
		t.Fatalf("%d /healthz checks failed or took over 1 s, e.g. %v", len(f), f[0])
	}
	if st.Closed == 0 || st.Dialled < 20000 {
		t.Fatalf("the flood never reached the cap: %+v", st)
	}
}

// apiCall calls an API block for the app during the flood and returns the status.
func apiCall(t *testing.T, a *app, path string, params url.Values) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := a.api().Block(ctx, path, params)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return st
}

// log returns ivrd's log so far.
func (p *ivrd) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}
