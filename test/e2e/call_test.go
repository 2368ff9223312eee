package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// softphoneRun is one `ivrd call` run in the background.
type softphoneRun struct {
	done   chan struct{}
	stdout bytes.Buffer
	stderr bytes.Buffer
	err    error
}

// runCall starts `ivrd call args...`.
func runCall(ctx context.Context, args ...string) *softphoneRun {
	r := &softphoneRun{done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, ivrdBin, append([]string{"call"}, args...)...)
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	go func() {
		r.err = cmd.Run()
		close(r.done)
	}()
	return r
}

// wait waits for the run to end and returns its exit code.
func (r *softphoneRun) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		t.Fatalf("ivrd call still running after %v", d)
	}
	var ee *exec.ExitError
	switch {
	case r.err == nil:
		return 0
	case errors.As(r.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("ivrd call: %v", r.err)
	return -1
}

// field is one "name: value" line of the summary.
func (r *softphoneRun) field(name string) string {
	for _, l := range strings.Split(r.stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// wav16k writes a WAV file of a freq Hz tone at 16 kHz, 16-bit stereo: not the call's
// format, so that `ivrd call --play` has to convert it as ivrd's prompt decoders do.
func wav16k(t *testing.T, path string, freq float64, d time.Duration) {
	t.Helper()
	const rate = 16000
	n := int(d.Seconds() * rate)
	data := make([]byte, 0, 4*n)
	for i := range n {
		s := uint16(int16(10000 * math.Sin(2*math.Pi*freq*float64(i)/rate)))
		data = binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(data, s), s)
	}
	h := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(36+len(data)))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1) // PCM
	h = binary.LittleEndian.AppendUint16(h, 2) // stereo
	h = binary.LittleEndian.AppendUint32(h, rate)
	h = binary.LittleEndian.AppendUint32(h, rate*4)
	h = binary.LittleEndian.AppendUint16(h, 4)
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = binary.LittleEndian.AppendUint32(append(h, "data"...), uint32(len(data)))
	if err := os.WriteFile(path, append(h, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCallCommand: `ivrd call` (the softphone) against ivrd itself. The app runs Monitor →
// Gather (1.5 s into the call) → Hangup; the softphone sends a 2 s tone from a 16 kHz stereo
// WAV, then the keys 123# 4 s into the call (as RFC 4733 events, then as SIP INFO) and records
// what it hears. The Gather gets 123, the
// Monitor MP3 holds the softphone's tone (2 s of it), and the softphone's WAV holds the Gather
// prompt where ivrd played it and none of its own tone. A call to an unknown number exits
// non-zero with 404.
func TestCallCommand(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	toneFile := filepath.Join(dir, "tone.wav")
	const toneHz = 1000
	wav16k(t, toneFile, toneHz, 2*time.Second)
	target := "sip:" + strings.TrimPrefix(number, "+") + "@" + r.p.sip

	for _, dtmf := range []string{"rfc4733", "info"} {
		t.Run(dtmf, func(t *testing.T) {
			r.sub(t)
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			out := filepath.Join(dir, dtmf+".wav")
			run := runCall(ctx, target, "--from", callerNum, "--play", toneFile, "--digits", "123#", "--dtmf", dtmf,
				"--digits-after", "4s", "--record", out, "--duration", "20s")
			sid := r.answered(callerNum)
			tMon := time.Now() // the Monitor answers the call
			r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}})
			expect(t, r.a.next(10*time.Second), "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ongoing"})
			time.Sleep(time.Until(tMon.Add(1500 * time.Millisecond))) // the prompt comes 1.5 s into the call
			r.do("middle/gather", "success_ok", url.Values{"session": {sid}, "msg": {gatherPrompt}, "timeout": {"5"},
				"notify_url": {r.a.url("/gather")}})
			tPrompt := time.Since(tMon) // the prompt starts as the request is answered
			expect(t, r.a.next(15*time.Second), "/gather", map[string]string{"ivr_block": "gather", "digits": "123", "call_state": "ongoing"})
			r.do("end/hangup", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/hangup")}})
			notes := r.a.nextTwo(15 * time.Second)
			mon := notes["/monitor"]
			expect(t, mon, "/monitor", map[string]string{"call_state": "ended", "monitor_url": "*"})
			expect(t, notes["/hangup"], "/hangup", map[string]string{"call_state": "ended"})

			if code := run.wait(t, 15*time.Second); code != 0 {
				t.Fatalf("ivrd call exited %d\n%s%s", code, run.stdout.String(), run.stderr.String())
			}
			t.Logf("ivrd call:\n%s", run.stdout.String())
			// ivrd's BYE was answered: the softphone's SIP stack stayed up for the 200 OK.
			if strings.Contains(run.stderr.String(), "Failed to handle request") {
				t.Fatalf("the softphone did not answer ivrd's BYE:\n%s", run.stderr.String())
			}
			if run.field("answered") != "yes" || run.field("sip status") != "200 OK" || run.field("digits sent") != "123# ("+dtmf+")" ||
				!strings.Contains(run.field("duration"), "hung up by far end") || !strings.HasSuffix(run.field("recorded"), ")") {
				t.Fatalf("summary:\n%s", run.stdout.String())
			}

			// The Monitor recording holds what the softphone sent: its file's tone, 2 s of it.
			code, mp3 := download(t, mon.params.Get("monitor_url"))
			if code != 200 {
				t.Fatalf("monitor_url: HTTP %d", code)
			}
			rec := decodeMP3(t, mp3)
			if got := toneLen(rec, toneHz); got < 1700*time.Millisecond || got > 2200*time.Millisecond {
				t.Fatalf("the Monitor MP3 holds %v of the softphone's %d Hz tone, want 2 s", got, toneHz)
			}

			// The softphone's recording holds the Gather prompt where ivrd played it, and not
			// its own tone.
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			heard, info, err := audio.DecodeWAV(b)
			if err != nil || info.Rate != audio.Rate || info.Channels != 1 || info.Bits != 16 {
				t.Fatalf("%s: %+v, %v", out, info, err)
			}
			if !strings.HasPrefix(run.field("recorded"), strconv.Itoa(len(b))+" bytes") {
				t.Fatalf("summary says %q, the file has %d bytes", run.field("recorded"), len(b))
			}
			prompts := bursts(heard, 300, 400*time.Millisecond)
			if len(prompts) != 1 || !near(prompts[0].Start, tPrompt, 400*time.Millisecond) || prompts[0].Len() < 500*time.Millisecond {
				t.Fatalf("the softphone heard %v, want the prompt once, from about %v", prompts, tPrompt)
			}
			if got := toneLen(heard, toneHz); got > 100*time.Millisecond {
				t.Fatalf("the softphone heard %v of its own tone", got)
			}
			t.Logf("%s: digits 123 gathered; Monitor MP3 %v of the tone; the softphone heard the prompt at %v (requested at %v), %v of audio",
				dtmf, toneLen(rec, toneHz), prompts[0], tPrompt.Round(time.Millisecond), audio.Duration(len(heard)))
		})
	}

	t.Run("unknown number", func(t *testing.T) {
		run := runCall(context.Background(), "sip:999@"+r.p.sip, "--record", filepath.Join(dir, "none.wav"))
		code := run.wait(t, 10*time.Second)
		if code == 0 || run.field("sip status") != "404 Not Found" || run.field("answered") != "no (failed)" ||
			!strings.Contains(run.stderr.String(), "404") {
			t.Fatalf("exit %d\n%s%s", code, run.stdout.String(), run.stderr.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "none.wav")); !os.IsNotExist(err) {
			t.Fatalf("a recording was left for an unanswered call: %v", err)
		}
	})
}
