package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/testnet"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// The far-end numbers the block tests dial through the trunk.
const (
	farNumber  = "+6590000001"
	callerNum  = "6511111111" // what sipp callers put in From (ivrd reports +6511111111)
	callerNum2 = "6522222222"
)

// rig is one ivrd with one app and the number routed to it, for the block tests.
type rig struct {
	t *testing.T
	a *app
	p *ivrd
}

func newRig(t *testing.T, extra ...string) *rig {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	a := newAppOn(t, data, number)
	p := startIvrd(t, data, "", "", extra...)
	a.ivrd = "http://" + p.http
	return &rig{t: t, a: a, p: p}
}

// sub points the rig's failures at subtest t.
func (r *rig) sub(t *testing.T) {
	r.t, r.a.t = t, t
}

// callIn places a sipp call from `from` to the app's number; the result comes on the channel.
func (r *rig) callIn(ctx context.Context, from string, script []testpeer.Step, hangupAfter time.Duration) <-chan testpeer.Result {
	return peerCall(ctx, r.t, testpeer.Call{Target: r.p.sip, Number: strings.TrimPrefix(number, "+"), From: from,
		Script: script, HangupAfter: hangupAfter, Timeout: 30 * time.Second})
}

// answered waits for the Answer notification of a call from `from` and returns its session.
func (r *rig) answered(from string) string {
	r.t.Helper()
	n := r.a.next(10 * time.Second)
	expect(r.t, n, "/answer", map[string]string{"ivr_block": "answer", "call_state": "ringing", "from": "+" + from, "to": number, "session": "*", "txn_ref": "*"})
	return n.params.Get("session")
}

// do calls a block and fails unless the API answers want.
func (r *rig) do(path string, want string, params url.Values) map[string]string {
	r.t.Helper()
	body := r.a.callBody(path, params)
	if body["status"] != want {
		r.t.Fatalf("%s %v: status %q, want %q", path, params, body["status"], want)
	}
	return body
}

// hangup ends a call with the Hangup block and checks its notification.
func (r *rig) hangup(sid string) note {
	r.t.Helper()
	r.do("end/hangup", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/hangup")}})
	n := r.a.next(10 * time.Second)
	expect(r.t, n, "/hangup", map[string]string{"ivr_block": "hangup", "session": sid, "call_state": "ended", "date": "*", "duration": "*"})
	return n
}

// callBody invokes an API block and returns its whole JSON answer (status and extra fields).
func (a *app) callBody(path string, params url.Values) map[string]string {
	a.t.Helper()
	out, err := a.api().Call(context.Background(), "ivr/"+path, params)
	if err != nil {
		a.t.Fatalf("%s: %v", path, err)
	}
	return out
}

// expect checks a notification's path and parameters; a wanted value "*" means "present".
func expect(t *testing.T, n note, path string, want map[string]string) {
	t.Helper()
	if n.path != path {
		t.Fatalf("notification to %s, want %s: %v", n.path, path, n.params)
	}
	for k, v := range want {
		got, ok := n.params[k]
		switch {
		case v == "*" && (!ok || got[0] == ""):
			t.Fatalf("%s notification lacks %s: %v", path, k, n.params)
		case v != "*" && (!ok || got[0] != v):
			t.Fatalf("%s notification: %s=%q, want %q (all: %v)", path, k, n.params.Get(k), v, n.params)
		}
	}
}

// nextTwo waits for two notifications that may come in either order and returns them keyed by
// path.
func (a *app) nextTwo(timeout time.Duration) map[string]note {
	a.t.Helper()
	out := map[string]note{}
	for i := 0; i < 2; i++ {
		n := a.next(timeout)
		out[n.path] = n
	}
	return out
}

// toneLen is the total length of the freq Hz tone in pcm.
func toneLen(pcm []int16, freq float64) time.Duration {
	var d time.Duration
	for _, s := range audio.ToneSpans(pcm, audio.Rate, freq, 40*time.Millisecond, 0.5) {
		d += s.Len()
	}
	return d
}

// bursts returns the stretches of pcm louder than rms (in 20 ms windows), merging stretches
// separated by less than gap: with gap longer than the pauses inside a prompt, each play of a
// prompt is one burst.
func bursts(pcm []int16, rms float64, gap time.Duration) []audio.Span {
	const w = audio.FrameSamples
	var out []audio.Span
	for i := 0; i+w <= len(pcm); i += w {
		if audio.RMS(pcm[i:i+w]) < rms {
			continue
		}
		at, end := audio.Duration(i), audio.Duration(i+w)
		if n := len(out); n > 0 && at-out[n-1].End < gap {
			out[n-1].End = end
			continue
		}
		out = append(out, audio.Span{Start: at, End: end})
	}
	return out
}

// heardFrom is what a peer heard from the moment at on (its Heard starts with its first packet).
func heardFrom(res testpeer.Result, at time.Time) []int16 {
	i := audio.Samples(at.Sub(res.HeardAt))
	if i < 0 {
		i = 0
	}
	if i > len(res.Heard) {
		i = len(res.Heard)
	}
	return res.Heard[i:]
}

// twoTones is the call of the Transfer tests: a rig whose trunk leads to a far party that
// sends 2 kHz 3–4 s after it answers and hangs up at 5 s (answering PCMA: the caller speaks
// PCMU), and a caller, answered, that sends 1 kHz 1.5–2.5 s after its own answer (the far end
// answers a moment later). It returns the rig, the session, and both parties' results.
func twoTones(ctx context.Context, t *testing.T) (*rig, string, <-chan testpeer.Result, func() testpeer.Result) {
	t.Helper()
	trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeAnswer, PCMA: true,
		Script:      []testpeer.Step{testpeer.Pause(3 * time.Second), testpeer.SendAudio(audio.SineWave(2000, time.Second, 12000))},
		HangupAfter: 5 * time.Second})
	r := newRig(t, "--sip-trunk", trunk)
	resc := r.callIn(ctx, callerNum, []testpeer.Step{testpeer.Pause(1500 * time.Millisecond), testpeer.SendAudio(audio.SineWave(1000, time.Second, 12000))}, 0)
	return r, r.answered(callerNum), resc, far
}

// startAnswerer starts a sipp far end and returns its address (for --sip-trunk) and its result.
func startAnswerer(ctx context.Context, t *testing.T, a testpeer.Answerer) (string, func() testpeer.Result) {
	t.Helper()
	if a.Timeout == 0 {
		a.Timeout = 25 * time.Second
	}
	addr, wait, err := a.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = wait() }) // sipp has exited (or been killed) before the test ends
	return addr, func() testpeer.Result {
		t.Helper()
		res, err := wait()
		if err != nil {
			t.Logf("answerer: %v\n%s", err, tail(res.Trace, 40))
		}
		return res
	}
}

// baresip is a baresip softphone calling ivrd: a second, independent SIP stack, whose keys
// (sent to its UDP console) go out as RFC 4733 telephone-events.
type baresip struct {
	t      *testing.T
	cmd    *exec.Cmd
	sip    string // its SIP address, host:port
	cons   string
	log    string
	dir    string // its configuration; sndfile writes what it heard here (*-dec.wav)
	exited chan struct{}
}

// baresipOpts is how a baresip caller calls.
type baresipOpts struct {
	transport string       // "" (UDP), "tcp" or "tls"
	caFile    string       // TLS: the authority whose certificates it trusts
	srtp      bool         // mandatory SDES-SRTP (RTP/SAVP)
	mic       []int16      // what it sends (8 kHz), then silence; default: silence
	nat       *testnet.NAT // run in the caller's namespace behind this NAT (else on 127.0.0.1)
	answer    bool         // do not call: answer the calls to `from` (at baresip.sip) at once
	micHangup bool         // hang up once mic has been sent (baresip ends a call when its audio file ends)
}

// startBaresip makes baresip (account user `from`) call number at target, with a silent
// microphone. It is killed when the test ends.
func startBaresip(t *testing.T, target, from string) *baresip {
	t.Helper()
	return startBaresipWith(t, target, from, baresipOpts{})
}

// startBaresipWith is startBaresip as o says.
func startBaresipWith(t *testing.T, target, from string, o baresipOpts) *baresip {
	t.Helper()
	if _, err := exec.LookPath("baresip"); err != nil {
		t.Skip("baresip is not installed (Debian baresip-core)")
	}
	dir := t.TempDir()
	host, sipAddr, cons := "127.0.0.1", freeSIPPort(t), freePort(t, "udp")
	if o.nat != nil {
		// A namespace of its own: any port is free there; its console is reached from the
		// namespace too, so it listens on the private address.
		host = o.nat.PrivateIP.String()
		sipAddr, cons = host+":5070", host+":5555"
	}
	mic := filepath.Join(dir, "mic.wav")
	// baresip hangs up when its audio file ends: make it outlast the call (unless asked not to).
	pcm := append([]int16(nil), o.mic...)
	if !o.micHangup {
		pcm = append(pcm, make([]int16, 60*audio.Rate)...)
	}
	if err := os.WriteFile(mic, audio.EncodeWAV(pcm, audio.Rate), 0o644); err != nil {
		t.Fatal(err)
	}
	modules := "module cons.so\nmodule g711.so\nmodule aufile.so\nmodule sndfile.so\n"
	if o.srtp {
		modules += "module srtp.so\n"
	}
	cfg := fmt.Sprintf(`sip_listen %s
net_interface %s
audio_player aufile,%s
audio_alert aufile,%s
audio_source aufile,%s
module_path /usr/lib/baresip/modules
%smodule_app account.so
module_app menu.so
cons_listen %s
snd_path %s
`, sipAddr, host, filepath.Join(dir, "player.wav"), filepath.Join(dir, "alert.wav"), mic, modules, cons, dir)
	if o.caFile != "" {
		cfg += "sip_cafile " + o.caFile + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	account, uriParams := "<sip:"+from+"@"+host, ""
	if o.transport != "" {
		uriParams = ";transport=" + o.transport
	}
	account += uriParams + ">;regint=0"
	if o.answer {
		account += ";answermode=auto"
	}
	if o.srtp {
		account += ";mediaenc=srtp-mand"
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &baresip{t: t, sip: sipAddr, cons: cons, log: filepath.Join(dir, "baresip.log"), dir: dir, exited: make(chan struct{})}
	logf, err := os.Create(b.log)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", dir, "-t", "40"}
	if !o.answer {
		args = append(args, "-e", "/dial sip:"+strings.TrimPrefix(number, "+")+"@"+target+uriParams)
	}
	if o.nat != nil {
		b.cmd = o.nat.Command(context.Background(), "baresip", args...)
	} else {
		b.cmd = exec.Command("baresip", args...)
	}
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); logf.Close(); close(b.exited) }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
		<-b.exited
		if t.Failed() {
			out, _ := os.ReadFile(b.log)
			t.Logf("baresip log:\n%s", tail(string(out), 30))
		}
	})
	return b
}

// heardPCM returns what baresip heard (the sndfile module's decoder dump), at 8 kHz.
func (b *baresip) heardPCM() []int16 {
	b.t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.dir, "*dec.wav"))
	if len(files) != 1 {
		b.t.Fatalf("baresip's decoder dumps: %v, want one", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		b.t.Fatalf("baresip heard nothing: %v", err)
	}
	pcm, info, err := audio.DecodeWAV(raw)
	if err != nil {
		b.t.Fatalf("baresip's WAV: %v", err)
	}
	if info.Rate != audio.Rate {
		if pcm, err = audio.Resample(pcm, info.Rate, audio.Rate); err != nil {
			b.t.Fatal(err)
		}
	}
	return pcm
}

// waitLog waits until baresip's log contains s.
func (b *baresip) waitLog(s string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for !b.logHas(s) {
		if time.Now().After(deadline) {
			b.t.Fatalf("baresip: no %q in its log within %v", s, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// key presses k on baresip's keypad (its UDP console): in a call that sends the DTMF event.
func (b *baresip) key(k rune) {
	b.t.Helper()
	c, err := net.Dial("udp", b.cons)
	if err != nil {
		b.t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(string(k))); err != nil {
		b.t.Fatal(err)
	}
}

// logHas reports whether baresip's log contains s.
func (b *baresip) logHas(s string) bool {
	out, _ := os.ReadFile(b.log)
	return strings.Contains(string(out), s)
}

// oneSecondTone returns the one span of freq in pcm and fails the test unless there is exactly
// one, starting within 350 ms of want and lasting 1 s (± 200 ms). what names the tone.
func oneSecondTone(t *testing.T, pcm []int16, freq float64, want time.Duration, what string) audio.Span {
	t.Helper()
	spans := audio.ToneSpans(pcm, audio.Rate, freq, 40*time.Millisecond, 0.5)
	if len(spans) != 1 || !near(spans[0].Start, want, 350*time.Millisecond) || !near(spans[0].Len(), time.Second, 200*time.Millisecond) {
		t.Fatalf("%s: %v, want 1 s at %v", what, spans, want)
	}
	return spans[0]
}
