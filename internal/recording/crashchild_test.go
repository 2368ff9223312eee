package recording

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// killChild runs the test named child of this test binary as a child process (a recording
// node) with env added to its environment, waits for it to print "recording started", lets
// it run for run, SIGKILLs it, and returns when it started and when it was killed.
func killChild(t *testing.T, child string, env []string, run time.Duration) (started, killed time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), run+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+child+"$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	startc := make(chan time.Time, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "recording started") {
				startc <- time.Now()
			}
		}
		close(startc)
	}()
	select {
	case at, ok := <-startc:
		if !ok {
			cmd.Wait()
			t.Fatalf("child did not start recording: %s", stderr.String())
		}
		started = at
	case <-time.After(20 * time.Second):
		t.Fatal("child did not start in 20 s")
	}
	time.Sleep(run)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = time.Now()
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child exit: %v (want killed)\n%s", err, stderr.String())
	}
	return started, killed
}

// feedTone sends a 1 kHz caller tone to rec in real time for d, stamping packets with their
// schedule, as a leg deriving times from RTP timestamps does, so that a scheduling hiccup of
// the process on a busy machine is not taken for a silent gap.
func feedTone(rec *Recording, start time.Time, d time.Duration) {
	g := &tone{freq: 1000, amp: 9000}
	for next := start; next.Sub(start) < d; {
		rec.Inbound(g.frame(audio.FrameSamples), next)
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
}
