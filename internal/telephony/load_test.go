package telephony

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// countTap counts inbound samples.
type countTap struct{ in, out atomic.Int64 }

func (c *countTap) Inbound(pcm []int16, at time.Time)  { c.in.Add(int64(len(pcm))) }
func (c *countTap) Outbound(pcm []int16, at time.Time) { c.out.Add(int64(len(pcm))) }

// TestLoadCPU measures the server's CPU per call: N concurrent sipp calls stream audio at us
// for a while; we tap it (and, with TELEPHONY_LOAD_PLAY=1, play to every caller throughout).
// Run: TELEPHONY_LOAD=100 go test -run LoadCPU -v ./internal/telephony/
func TestLoadCPU(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TELEPHONY_LOAD"))
	if n <= 0 {
		t.Skip("set TELEPHONY_LOAD=<calls> to run")
	}
	play := os.Getenv("TELEPHONY_LOAD_PLAY") == "1"
	const hold = 12 * time.Second
	tap := &countTap{}
	var answered atomic.Int64
	s := startServer(t, func(l *Leg) {
		l.SetTap(tap)
		if err := l.Answer(context.Background()); err != nil {
			return
		}
		answered.Add(1)
		if play {
			prompt := tone(440, hold, 4000)
			_ = l.Play(context.Background(), prompt)
		}
		<-l.Done()
	})

	dir := t.TempDir()
	raw := audio.EncodeUlaw(nil, tone(1000, 2*time.Second, 6000))
	file := filepath.Join(dir, "a.pcmu")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// Our RTP goes to sipp's -mp port (another process), so receiving it costs us nothing.
	mp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mport := mp.LocalAddr().(*net.UDPAddr).Port
	mp.Close()
	sp, err := net.ListenPacket("udp", "127.0.0.1:0") // sipp's -p 0 means 5060, not "any"
	if err != nil {
		t.Fatal(err)
	}
	sport := sp.LocalAddr().(*net.UDPAddr).Port
	sp.Close()
	scen := fmt.Sprintf(`<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="load">
<send retrans="500"><![CDATA[

INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:load@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:load@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000

]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="200" rrs="true"/>
<send><![CDATA[

ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
<nop><action><exec rtp_stream="%s,-1,0"/></action></nop>
<pause milliseconds="%d"/>
<send retrans="500"><![CDATA[

BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
</scenario>
`, file, hold.Milliseconds())
	sf := filepath.Join(dir, "load.xml")
	if err := os.WriteFile(sf, []byte(scen), 0o644); err != nil {
		t.Fatal(err)
	}

	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), hold+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", "-sf", sf, "-m", strconv.Itoa(n), "-l", strconv.Itoa(n),
		"-r", strconv.Itoa(n), "-nostdin", "-i", "127.0.0.1", "-p", strconv.Itoa(sport), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mport), "-s", "100", s.Addr())
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("sipp: %v\n%s", err, tailString(string(out)))
	}
	wall := time.Since(t0)
	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())

	callSeconds := float64(answered.Load()) * hold.Seconds()
	t.Logf("%d calls answered (play=%v); wall %v; server CPU %v; inbound %.0f s of audio, outbound %.0f s",
		answered.Load(), play, wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
		float64(tap.in.Load())/audio.Rate, float64(tap.out.Load())/audio.Rate)
	if callSeconds > 0 {
		t.Logf("CPU per call: %.3f %% of one core", 100*cpu.Seconds()/callSeconds)
	}
}

func tailString(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
