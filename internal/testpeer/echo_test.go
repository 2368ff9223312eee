package testpeer

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Two load calls (LoopScenario) answered by EchoScenario under sipp's -rtp_echo: both
// complete, the answer's SDP names the echo port, and RTP sent there comes back.
func TestEchoScenario(t *testing.T) {
	if !Available() {
		t.Skip("sipp is not installed (Debian package sip-tester; scripts/install-deps.sh)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mp, err := FreeMediaPort()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := freeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	uas := filepath.Join(dir, "uas.xml")
	if err := os.WriteFile(uas, []byte(EchoScenario(mp)), 0o644); err != nil {
		t.Fatal(err)
	}
	answerer := exec.CommandContext(ctx, Sipp, "-sf", uas, "-m", "2", "-nostdin", "-rtp_echo",
		"-i", "127.0.0.1", "-p", strconv.Itoa(sp), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mp))
	var aout bytes.Buffer
	answerer.Stdout, answerer.Stderr = &aout, &aout
	if err := answerer.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var answererErr error
	go func() { answererErr = answerer.Wait(); close(exited) }()
	defer func() {
		cancel()
		<-exited
	}()
	if err := WaitListening(sp, exited, 5*time.Second); err != nil {
		t.Fatalf("answerer: %v\n%s", err, tail(aout.String()))
	}
	if err := WaitListening(mp, exited, 5*time.Second); err != nil {
		t.Fatalf("answerer's echo port: %v\n%s", err, tail(aout.String()))
	}

	// The echo: whatever reaches the media port goes back to its sender.
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := []byte("\x80\x00\x00\x01rtp-echo-probe")
	if _, err := c.WriteTo(pkt, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mp}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, _, err := c.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], pkt) {
		t.Fatalf("echo: got %q, %v; want %q", buf[:n], err, pkt)
	}

	tone := filepath.Join(dir, "tone.pcmu")
	if err := os.WriteFile(tone, bytes.Repeat([]byte{0xff}, 1600), 0o644); err != nil {
		t.Fatal(err)
	}
	uac := filepath.Join(dir, "uac.xml")
	if err := os.WriteFile(uac, []byte(LoopScenario(tone, time.Second, c.LocalAddr().(*net.UDPAddr).Port)), 0o644); err != nil {
		t.Fatal(err)
	}
	inf := filepath.Join(dir, "calls.csv")
	if err := os.WriteFile(inf, []byte("SEQUENTIAL\n6590000001;\n6590000002;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cp, err := freeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	cmp, err := FreeMediaPort()
	if err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(dir, "caller.log")
	out, err := exec.CommandContext(ctx, Sipp, "-sf", uac, "-inf", inf, "-s", "100", "-m", "2", "-r", "10",
		"-nostdin", "-i", "127.0.0.1", "-p", strconv.Itoa(cp), "-mi", "127.0.0.1", "-mp", strconv.Itoa(cmp),
		"-trace_msg", "-message_file", trace, "-timeout", "20s", "-timeout_error",
		"127.0.0.1:"+strconv.Itoa(sp)).CombinedOutput()
	if err != nil {
		t.Fatalf("caller: %v\n%s", err, tail(string(out)))
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Count(string(b), "m=audio "+strconv.Itoa(mp)+" "), 2; got != want {
		t.Fatalf("answers naming the echo port %d: %d, want %d", mp, got, want)
	}
	select {
	case <-exited:
		if answererErr != nil {
			t.Fatalf("answerer: %v\n%s", answererErr, tail(aout.String()))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the answerer did not end after its two calls")
	}
}
