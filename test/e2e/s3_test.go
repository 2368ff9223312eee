package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/testpeer"
	"github.com/ivrd/ivrd/internal/tests3"
)

// s3Rig is a rig whose ivrd keeps its recordings in a real S3 server (versitygw).
func s3Rig(t *testing.T, urls string) (*rig, *tests3.Server) {
	t.Helper()
	srv := tests3.Start(t)
	t.Setenv(config.S3AccessKeyEnv, srv.Access)
	t.Setenv(config.S3SecretKeyEnv, srv.Secret)
	return newRig(t, "--blob", srv.BlobURL(), "--recording-urls", urls), srv
}

// pieceCount is how many pieces of recordings the store holds.
func pieceCount(t *testing.T, srv *tests3.Server) int {
	t.Helper()
	objs, err := srv.Objects("pieces/")
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

// TestMonitorS3 is the Monitor scenario with recordings in S3, in both URL modes: a sipp caller
// sends a 1 kHz tone 4 s after the answer; while the call runs the recording reaches the store
// in pieces; the monitor_url (ivrd's own in proxy mode, the store's presigned one otherwise)
// downloads the one stored object with the tone at its place, refuses a tampered signature,
// and plays back as a <url> in the next call.
func TestMonitorS3(t *testing.T) {
	for _, mode := range []string{config.RecordingURLsProxy, config.RecordingURLsPresigned} {
		t.Run(mode, func(t *testing.T) {
			r, srv := s3Rig(t, mode)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			tone := audio.SineWave(1000, time.Second, 12000)
			resc := r.callIn(ctx, callerNum, []testpeer.Step{testpeer.Pause(4 * time.Second), testpeer.SendAudio(tone)}, 0)
			sid := r.answered(callerNum)
			tAns := time.Now()
			r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/monitor")}})
			mon := r.a.next(15 * time.Second)
			expect(t, mon, "/monitor", map[string]string{"ivr_block": "monitor", "call_state": "ongoing"})
			tRec := mon.at
			time.Sleep(time.Until(tAns.Add(6500 * time.Millisecond)))
			if n := pieceCount(t, srv); n == 0 {
				t.Fatalf("no pieces in the store %v into the recording", time.Since(tRec))
			}
			r.do("end/hangup", "success_ok", url.Values{"session": {sid}, "notify_url": {r.a.url("/hangup")}})
			notes := r.a.nextTwo(15 * time.Second)
			<-resc
			murl := notes["/monitor"].params.Get("monitor_url")
			tEnd := notes["/hangup"].at
			switch mode {
			case config.RecordingURLsProxy:
				if !strings.HasPrefix(murl, r.a.ivrd+"/recordings/") || !strings.Contains(murl, "Signature=") {
					t.Fatalf("proxy monitor_url %q", murl)
				}
			case config.RecordingURLsPresigned:
				if !strings.HasPrefix(murl, srv.Endpoint+"/"+srv.Bucket+"/") || !strings.Contains(murl, "X-Amz-Signature=") {
					t.Fatalf("presigned monitor_url %q", murl)
				}
			}
			objs, _ := srv.Objects("")
			if len(objs) != 1 || !strings.HasPrefix(objs[0].Name, "rec-") || !strings.Contains(murl, "/"+objs[0].Name+"?") {
				t.Fatalf("the store holds %v; monitor_url %s", objs, murl)
			}
			if ents, _ := os.ReadDir(filepath.Join(r.p.data, "recordings")); len(ents) != 0 {
				t.Fatalf("recordings on local disk too: %v", ents)
			}

			code, mp3 := download(t, murl)
			if code != 200 {
				t.Fatalf("download %s: %d", murl, code)
			}
			length, callerTone := checkCallerTone(t, decodeMP3(t, mp3), tAns, tRec, tEnd)
			t.Logf("%s: recording %v, tone at %v, %s", mode, length, callerTone.Start, murl[:strings.Index(murl, "?")])

			// Tampered: refused (by ivrd, or by the store itself).
			u, _ := url.Parse(murl)
			// (Expiry itself is tested in internal/blob, for both.)
			sigParam, expParam, other := "Signature", "Expires", "9999999999"
			if mode == config.RecordingURLsPresigned {
				sigParam, expParam, other = "X-Amz-Signature", "X-Amz-Expires", "3600" // signed for 604800
			}
			for name, mod := range map[string]func(url.Values){
				"signature": func(v url.Values) {
					s, d := v.Get(sigParam), "0"
					if s[0] == '0' {
						d = "1"
					}
					v.Set(sigParam, d+s[1:])
				},
				"lifetime changed": func(v url.Values) { v.Set(expParam, other) },
			} {
				q := u.Query()
				mod(q)
				t2 := *u
				t2.RawQuery = q.Encode()
				if code, _ := download(t, t2.String()); code != http.StatusForbidden {
					t.Errorf("%s URL (%s): HTTP %d, want 403", mode, name, code)
				}
			}

			// The recording plays back as a <url> in the next call (through the outbound
			// policy: ivrd's own /recordings/ path, or the store on loopback).
			ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel2()
			resc = r.callIn(ctx2, callerNum2, nil, 0)
			sid2 := r.answered(callerNum2)
			tPlay := time.Now()
			r.do("middle/play", "success_ok", url.Values{"session": {sid2}, "msg": {"<url>" + murl + "</url>"}, "notify_url": {r.a.url("/play")}})
			expect(t, r.a.next(30*time.Second), "/play", map[string]string{"ivr_block": "play", "call_state": "ongoing"})
			r.hangup(sid2)
			res := <-resc
			heard := heardFrom(res, tPlay)
			if got := toneLen(heard, 1000); !near(got, time.Second, 200*time.Millisecond) {
				t.Fatalf("the caller heard %v of the recording's 1 kHz tone, want 1 s", got)
			}

			// The admin CLI reaches the recording where serve keeps it: deleting it removes
			// the object from the bucket, and its URL answers 404 from then on.
			rows := jsonLines(t, ivrdCmd(t, "recording", "list", "--data", r.p.data, "--blob", srv.BlobURL(), "--session", sid))
			if len(rows) != 1 || rows[0]["key"] != objs[0].Name {
				t.Fatalf("recording list --blob: %v; the store holds %v", rows, objs)
			}
			ivrdCmd(t, "recording", "delete", "--data", r.p.data, "--blob", srv.BlobURL(), "--id", rows[0]["id"])
			if left, err := srv.Objects(""); err != nil || len(left) != 0 {
				t.Fatalf("after ivrd recording delete --blob: the store holds %v (%v)", left, err)
			}
			if code, _ := download(t, murl); code != http.StatusNotFound {
				t.Errorf("monitor_url of a deleted recording: HTTP %d, want 404", code)
			}
		})
	}
}

// TestMonitorS3SurvivesSIGKILL: ivrd recording into S3 is SIGKILLed mid-call and started again.
// With the node's file it recovers the call up to about half a second before the kill; with
// the file gone too (as when another node takes over) it recovers it from the pieces, losing
// at most 5 s. Either way the recording ends up in the store, its pieces deleted, and the app
// is notified once with a monitor_url that plays the caller's tone.
func TestMonitorS3SurvivesSIGKILL(t *testing.T) {
	for _, c := range []struct {
		name     string
		loseFile bool
		lose     time.Duration // at most this much of the call before the kill
	}{
		{"node's file", false, time.Second},
		{"pieces only", true, 5 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, srv := s3Rig(t, config.RecordingURLsProxy)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			peerCtx, stopPeer := context.WithCancel(ctx)
			defer stopPeer()
			tone := audio.SineWave(1000, 25*time.Second, 12000)
			r.callIn(peerCtx, callerNum, []testpeer.Step{testpeer.SendAudio(tone)}, 0)
			sid := r.answered(callerNum)
			r.do("middle/monitor", "success_ok", url.Values{"session": {sid}, "tag": {"crash"}, "notify_url": {r.a.url("/monitor")}})
			mon := r.a.next(15 * time.Second)
			if mon.params.Get("call_state") != "ongoing" {
				t.Fatal(mon.params)
			}
			time.Sleep(8 * time.Second)
			if n := pieceCount(t, srv); n < 2 {
				t.Fatalf("%d pieces in the store 8 s into the recording", n)
			}
			tKill := time.Now()
			r.p.kill()
			stopPeer()
			recorded := tKill.Sub(mon.at)
			if c.loseFile {
				parts, _ := filepath.Glob(filepath.Join(r.p.data, "recording", "*.part"))
				if len(parts) != 1 {
					t.Fatalf("the node's files: %v", parts)
				}
				os.Remove(parts[0])
			}

			startIvrd(t, r.p.data, r.p.http, r.p.sip, "--blob", srv.BlobURL())
			n := r.a.next(30 * time.Second)
			if n.params.Get("ivr_block") != "monitor" || n.params.Get("call_state") != "ended" || n.params.Get("session") != sid ||
				n.params.Get("tag") != "crash" || n.params.Get("monitor_url") == "" {
				t.Fatalf("recovered notification: %v", n.params)
			}
			if objs, _ := srv.Objects(""); len(objs) != 1 || !strings.Contains(n.params.Get("monitor_url"), "/recordings/"+objs[0].Name+"?") {
				t.Fatalf("the store holds %v, want the recording alone (no pieces)", objs)
			}
			code, mp3 := download(t, n.params.Get("monitor_url"))
			if code != 200 {
				t.Fatal("download:", code)
			}
			pcm := decodeMP3(t, mp3)
			length := audio.Duration(len(pcm))
			t.Logf("%s: recovered %v; %v recorded before SIGKILL", c.name, length, recorded)
			if length < recorded-c.lose || length > recorded+300*time.Millisecond {
				t.Fatalf("recovered recording is %v; %v was recorded before the kill", length, recorded)
			}
			if got := toneLen(pcm, 1000); got < length*8/10 {
				t.Fatalf("caller's tone covers %v of %v", got, length)
			}
			r.a.quiet(t, time.Second)
		})
	}
}
