package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/store"
	"github.com/ivrd/ivrd/internal/testpeer"
	"github.com/ivrd/ivrd/internal/testpg"
	"github.com/ivrd/ivrd/internal/tests3"
)

// clusterSecret is the --cluster-secret of the tests' nodes.
const clusterSecret = "e2e-cluster-secret"

// clusterNodes starts n ivrd nodes, each with its own data directory and the flags extra,
// sharing one fresh PostgreSQL database (its URL returned) and one S3 server, with app a
// created on them.
func clusterNodes(t *testing.T, n int, extra ...string) ([]*ivrd, *app, string) {
	t.Helper()
	dsn := onPostgres(t)
	s3 := tests3.Start(t)
	t.Setenv(config.S3AccessKeyEnv, s3.Access)
	t.Setenv(config.S3SecretKeyEnv, s3.Secret)
	dir := t.TempDir()
	a := newAppOn(t, filepath.Join(dir, "node0"), number)
	var nodes []*ivrd
	for i := range n {
		data := filepath.Join(dir, "node"+string(rune('0'+i)))
		nodes = append(nodes, startIvrd(t, data, "", "", append([]string{"--blob", s3.BlobURL(), "--cluster-secret", clusterSecret}, extra...)...))
	}
	return nodes, a, dsn
}

// TestClusterNodeDies: two nodes on PostgreSQL and S3. Monitored calls come in on node A while
// the app drives them through node B's API (every request forwarded to A, signed with the
// cluster secret). A is SIGKILLed mid-call and never restarted: within 30 s B ends the calls
// (BYE to each caller), rebuilds each Monitor recording from the pieces A uploaded (the
// prompt's tone up to at most 5 s before the kill, decoded by ffmpeg) and delivers each
// notification the sessions owed exactly once.
func TestClusterNodeDies(t *testing.T) {
	const calls = 3
	const clusterNum = "+6561230002"
	nodes, a, dsn := clusterNodes(t, 2)
	rcv := newFlakyReceiver(t, a)
	ivrdCmd(t, "number", "add", "--data", nodes[0].data, "--app", a.id, "--number", clusterNum, "--notify-url", rcv.url("/answer"))
	nodeA, nodeB := nodes[0], nodes[1]
	a.ivrd = "http://" + nodeB.http // the app knows one base URL: B's

	mons := &monitors{on: map[string]time.Time{}, url: map[string]string{}}
	results, driverErrs := monitoredPlays(t, a, nodeA, rcv, clusterNum, calls, 60*time.Second, mons.see)
	if errs := driverErrs(); len(errs) > 0 {
		t.Fatalf("API requests through node B failed: %v", errs)
	}
	time.Sleep(7 * time.Second) // pieces of every recording reach S3 (every 3 s)
	killed := time.Now()
	nodeA.kill()

	// Every caller gets a BYE, from B.
	for i, rc := range results {
		select {
		case res := <-rc:
			if !res.Answered || !res.ByeFromServer {
				t.Errorf("caller %d: answered %v, BYE from ivrd %v", i, res.Answered, res.ByeFromServer)
			}
		case <-time.After(time.Until(killed.Add(30 * time.Second))):
			t.Fatalf("caller %d still in its call 30 s after node A died", i)
		}
	}
	want := []string{"answer/ringing", "monitor/ongoing", "monitor/ended"}
	var bySession map[string][]attempt
	for {
		bySession = map[string][]attempt{}
		for _, at := range rcv.log() {
			bySession[at.session] = append(bySession[at.session], at)
		}
		ended := 0
		for _, atts := range bySession {
			for _, at := range atts {
				if at.key() == "monitor/ended" && at.code == 200 {
					ended++
				}
			}
		}
		if ended >= calls {
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("%d of %d Monitor ended notifications within 30 s of node A's death", ended, calls)
		}
		time.Sleep(200 * time.Millisecond)
	}
	settled := time.Since(killed)
	time.Sleep(2 * time.Second) // a notification sent twice would show by now
	bySession = map[string][]attempt{}
	for _, at := range rcv.log() {
		bySession[at.session] = append(bySession[at.session], at)
	}
	if len(bySession) != calls {
		t.Fatalf("notifications for %d sessions, want %d", len(bySession), calls)
	}
	var wg sync.WaitGroup
	for sid, atts := range bySession {
		got := map[string]int{}
		ids := map[string]bool{}
		for _, at := range atts {
			got[at.key()]++
			if ids[at.id] {
				t.Errorf("%s: delivery id %s attempted twice", sid, at.id)
			}
			ids[at.id] = true
		}
		for _, k := range want {
			if got[k] != 1 {
				t.Errorf("%s: %s notified %d times: %v", sid, k, got[k], got)
			}
		}
		wg.Go(func() {
			murl, on := mons.get(sid)
			if !strings.HasPrefix(murl, "http://"+nodeB.http+"/") {
				t.Errorf("%s: monitor_url %q, want one of node B", sid, murl)
				return
			}
			length, tone, ok := promptTone(t, sid, murl)
			if !ok {
				return
			}
			recorded := killed.Sub(on)
			if length < recorded-5*time.Second || length > recorded+time.Second || tone < length*6/10 {
				t.Errorf("%s: recording of %v (%v recorded before the kill) with %v of the prompt's tone", sid, length, recorded, tone)
			}
			t.Logf("%s: %v recorded before the kill, %v rebuilt from the pieces, %v of tone", sid, recorded.Round(time.Millisecond),
				length.Round(time.Millisecond), tone.Round(time.Millisecond))
		})
	}
	wg.Wait()
	t.Logf("node A killed with %d live monitored calls; node B settled them in %v", calls, settled.Round(100*time.Millisecond))

	// The dead node is gone from the store; every session is B's and ended.
	st, err := store.OpenPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nodesLeft, err := st.Nodes()
	if err != nil || len(nodesLeft) != 1 {
		t.Fatalf("nodes after A's death: %+v, %v", nodesLeft, err)
	}
	for sid := range bySession {
		row, err := st.Session(sid)
		if err != nil {
			t.Fatal(err)
		}
		if row.Node != nodesLeft[0].ID || row.State != store.StateEnded {
			t.Errorf("%s: %s on %s, want ended on B (%s)", sid, row.State, row.Node, nodesLeft[0].ID)
		}
	}
	if !strings.Contains(nodeB.logText(), "cluster: sessions of a dead node settled") {
		t.Error("node B did not log the takeover")
	}
}

// TestClusterBehindKamailio: two nodes behind Kamailio running deploy/kamailio/kamailio.cfg.
// Calls to Kamailio are spread over both nodes; the app, talking to node B only, plays a prompt
// and hangs up (requests for A's sessions forwarded), and each caller gets the BYE back through
// Kamailio (Record-Route). Node A is SIGKILLed: Kamailio's OPTIONS probes notice, and every later
// call goes to B and is carried through.
func TestClusterBehindKamailio(t *testing.T) {
	nodes, a, _ := clusterNodes(t, 2)
	nodeA, nodeB := nodes[0], nodes[1]
	ks := testpeer.Dispatcher{Nodes: []string{nodeA.sip, nodeB.sip}, ProbeInterval: 1}.Start(t)
	a.ivrd = "http://" + nodeB.http // for the whole test: driveApp's client keeps it
	driverErrs := driveApp(t, a, playThenHangUp(a))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	callAll := func(n int) {
		t.Helper()
		var results []<-chan testpeer.Result
		for range n {
			results = append(results, peerCall(ctx, t, testpeer.Call{Target: ks.Addr, Number: strings.TrimPrefix(number, "+"),
				From: callerNum, Timeout: 40 * time.Second}))
			time.Sleep(200 * time.Millisecond)
		}
		for i, rc := range results {
			if res := <-rc; !res.Answered || !res.ByeFromServer {
				t.Fatalf("call %d through Kamailio: answered %v, BYE from ivrd %v (status %d)\n%s", i, res.Answered, res.ByeFromServer,
					res.Status, tail(res.Trace, 40))
			}
		}
	}
	carried := func(p *ivrd) int { return strings.Count(p.logText(), `msg="incoming call"`) }
	routedTo := func(p *ivrd) int { return strings.Count(ks.Log(), "to sip:"+p.sip) }

	callAll(6)
	if ca, cb := carried(nodeA), carried(nodeB); ca+cb != 6 || ca == 0 || cb == 0 {
		t.Fatalf("6 calls: %d carried by A, %d by B; want both some", ca, cb)
	}
	if errs := driverErrs(); len(errs) > 0 {
		t.Fatalf("API requests failed: %v", errs)
	}
	t.Logf("6 calls through Kamailio: %d on node A, %d on node B", carried(nodeA), carried(nodeB))

	nodeA.kill()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(ks.Log(), "dispatcher: node sip:"+nodeA.sip+" down") {
		if time.Now().After(deadline) {
			t.Fatalf("Kamailio did not notice node A's death in 10 s:\n%s", tail(ks.Log(), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	before, onB := routedTo(nodeA), carried(nodeB)
	callAll(4)
	if got := routedTo(nodeA) - before; got != 0 {
		t.Errorf("%d calls sent to the dead node after Kamailio noticed", got)
	}
	if got := carried(nodeB) - onB; got != 4 {
		t.Errorf("node B carried %d of the 4 calls after A's death", got)
	}
	if errs := driverErrs(); len(errs) > 0 {
		t.Fatalf("API requests failed: %v", errs)
	}
}

// TestClusterScript: scripts/cluster.sh up 3 starts PostgreSQL, S3, Kamailio and three nodes and
// prints its JSON line; calls to its sip address and number reach the app at --notify-url, which
// drives them through one node's API; scripts/cluster.sh down stops every process it started and
// removes its directory.
func TestClusterScript(t *testing.T) {
	if !testpeer.KamailioAvailable() {
		t.Skip("kamailio is not installed (Debian package kamailio; scripts/install-deps.sh)")
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	script, err := filepath.Abs("../../scripts/cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(script, args...)
		cmd.Env = append(os.Environ(), "IVRD_CLUSTER_DIR="+dir, "IVRD_BIN="+ivrdBin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cluster.sh %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	a := newApp(t, "", "")
	out := run("up", "3", "--notify-url", a.url("/answer"))
	t.Cleanup(func() { run("down") })
	var c struct {
		SIP         string   `json:"sip"`
		API         []string `json:"api"`
		AppID       string   `json:"app_id"`
		AccessToken string   `json:"access_token"`
		Number      string   `json:"number"`
		PIDs        []int    `json:"pids"`
	}
	if err := json.Unmarshal(out, &c); err != nil || len(c.API) != 3 || len(c.PIDs) != 3 || c.SIP == "" || c.AppID == "" || c.Number == "" {
		t.Fatalf("cluster.sh up printed %q (%v)", out, err)
	}
	a.id, a.token, a.ivrd = c.AppID, c.AccessToken, c.API[2]
	driverErrs := driveApp(t, a, playThenHangUp(a))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var results []<-chan testpeer.Result
	for range 3 {
		results = append(results, peerCall(ctx, t, testpeer.Call{Target: c.SIP, Number: strings.TrimPrefix(c.Number, "+"),
			From: callerNum, Timeout: 40 * time.Second}))
		time.Sleep(200 * time.Millisecond)
	}
	for i, rc := range results {
		if res := <-rc; !res.Answered || !res.ByeFromServer {
			t.Fatalf("call %d: answered %v, BYE from ivrd %v (status %d)", i, res.Answered, res.ByeFromServer, res.Status)
		}
	}
	if errs := driverErrs(); len(errs) > 0 {
		t.Fatalf("API requests failed: %v", errs)
	}
	run("down")
	for _, pid := range c.PIDs {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("node process %d still runs after down", pid)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s left after down", dir)
	}
}

// playThenHangUp is an app's answer to each call: a short spoken prompt, then a hang-up.
func playThenHangUp(a *app) func(n note) (string, url.Values) {
	return func(n note) (string, url.Values) {
		sid := n.params.Get("session")
		switch n.path {
		case "/answer":
			return "middle/play", url.Values{"session": {sid}, "msg": {"hello"}, "notify_url": {a.url("/play")}}
		case "/play":
			return "end/hangup", url.Values{"session": {sid}}
		}
		return "", nil
	}
}

// TestClusterRoom: a room made on node A is joined by a caller on node B, through an internal
// SIP call from B to A: the two callers hear each other's tone and not their own. The app talks
// to node B only (A's session's requests forwarded).
func TestClusterRoom(t *testing.T) {
	nodes, a, _ := clusterNodes(t, 2)
	nodeA, nodeB := nodes[0], nodes[1]
	a.ivrd = "http://" + nodeB.http
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	answered := func(from string) string {
		t.Helper()
		n := a.next(15 * time.Second)
		expect(t, n, "/answer", map[string]string{"from": "+" + from, "session": "*"})
		return n.params.Get("session")
	}
	num := strings.TrimPrefix(number, "+")
	// A sends 1 kHz 3–4 s after its answer and hangs up at 6 s; B (on the other node, answered
	// about a second later) sends 2 kHz 1.5–2.5 s after its answer and hangs up at 5 s.
	resA := peerCall(ctx, t, testpeer.Call{Target: nodeA.sip, Number: num, From: callerNum, Timeout: 30 * time.Second, HangupAfter: 6 * time.Second,
		Script: []testpeer.Step{testpeer.Pause(3 * time.Second), testpeer.SendAudio(audio.SineWave(1000, time.Second, 12000))}})
	sidA := answered(callerNum)
	bodyA := a.callBody("end/transfer", url.Values{"session": {sidA}, "dest": {"room:"}, "notify_url": {a.url("/transfer")}})
	room := bodyA["room"]
	if bodyA["status"] != "success_ok" || room == "" {
		t.Fatalf("transfer to a new room on node A: %v", bodyA)
	}
	resB := peerCall(ctx, t, testpeer.Call{Target: nodeB.sip, Number: num, From: callerNum2, Timeout: 30 * time.Second, HangupAfter: 5 * time.Second,
		Script: []testpeer.Step{testpeer.Pause(1500 * time.Millisecond), testpeer.SendAudio(audio.SineWave(2000, time.Second, 12000))}})
	sidB := answered(callerNum2)
	if bodyB := a.callBody("end/transfer", url.Values{"session": {sidB}, "dest": {"room:" + room}, "notify_url": {a.url("/transfer")}}); bodyB["status"] != "success_ok" || bodyB["room"] != room {
		t.Fatalf("joining room %s from node B: %v", room, bodyB)
	}
	ra, rb := <-resA, <-resB
	for _, c := range []struct {
		name      string
		res       testpeer.Result
		hear, own float64
	}{{"A (node A)", ra, 2000, 1000}, {"B (node B)", rb, 1000, 2000}} {
		if !c.res.Answered {
			t.Fatalf("caller %s not answered", c.name)
		}
		if got := toneLen(c.res.Heard, c.hear); got < 800*time.Millisecond {
			t.Errorf("caller %s heard %v of the other's %.0f Hz", c.name, got, c.hear)
		}
		if got := toneLen(c.res.Heard, c.own); got > 100*time.Millisecond {
			t.Errorf("caller %s heard its own %.0f Hz for %v", c.name, c.own, got)
		}
		t.Logf("caller %s heard the other's %.0f Hz for %v", c.name, c.hear, toneLen(c.res.Heard, c.hear))
	}
	if !strings.Contains(nodeB.logText(), "room: joined over an internal call") || !strings.Contains(nodeA.logText(), "room: internal call joined") {
		t.Error("the room was not joined over an internal call between the nodes")
	}
}

// TestClusterDialOnReceivingNode: start/dial sent to node B places its call from node B (its
// SIP address in the INVITE's Via), and the session is B's; a later request for it sent to
// node A is forwarded to B.
func TestClusterDialOnReceivingNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	trunk, far := startAnswerer(ctx, t, testpeer.Answerer{Mode: testpeer.ModeAnswer, Timeout: 30 * time.Second})
	nodes, a, dsn := clusterNodes(t, 2, "--sip-trunk", trunk)
	nodeA, nodeB := nodes[0], nodes[1]
	a.ivrd = "http://" + nodeB.http
	if st := a.call("start/dial", url.Values{"dest": {farNumber}, "notify_url": {a.url("/dial")}}); st != "success_ok" {
		t.Fatal("dial:", st)
	}
	n := a.next(15 * time.Second)
	expect(t, n, "/dial", map[string]string{"dial_status": "answered", "call_state": "ongoing", "session": "*"})
	sid := n.params.Get("session")
	a.ivrd = "http://" + nodeA.http // the hang-up goes to the other node
	if st := a.call("end/hangup", url.Values{"session": {sid}}); st != "success_ok" {
		t.Fatal("hangup through node A:", st)
	}
	res := far()
	if !res.Answered || !res.ByeFromServer {
		t.Fatalf("far end: answered %v, BYE %v", res.Answered, res.ByeFromServer)
	}
	_, portB, _ := strings.Cut(nodeB.sip, ":")
	if !strings.Contains(res.Trace, "Via: SIP/2.0/UDP 127.0.0.1:"+portB) {
		t.Fatalf("the INVITE did not come from node B (%s):\n%s", nodeB.sip, tail(res.Trace, 40))
	}
	st, err := store.OpenPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	row, err := st.Session(sid)
	if idB := nodeB.nodeID(t); err != nil || row.Node != idB {
		t.Fatalf("dialled session %s on node %q (%v), want B's %q", sid, row.Node, err, idB)
	}
}

// monitors notes when each session's Monitor started and its monitor_url (a seen func of
// monitoredPlays).
type monitors struct {
	mu  sync.Mutex
	on  map[string]time.Time // session → Monitor ongoing notified
	url map[string]string    // session → monitor_url of Monitor ended
}

func (m *monitors) see(n note) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case n.path == "/monitor" && n.params.Get("call_state") == "ongoing":
		m.on[n.params.Get("session")] = n.at
	case n.path == "/monitor" && n.params.Get("call_state") == "ended":
		m.url[n.params.Get("session")] = n.params.Get("monitor_url")
	}
}

// get returns session sid's monitor_url and when its Monitor started.
func (m *monitors) get(sid string) (string, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.url[sid], m.on[sid]
}

// sessions returns the sessions whose Monitor started.
func (m *monitors) sessions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for sid := range m.on {
		out = append(out, sid)
	}
	return out
}

// nodeID is the node id ivrd p keeps in its data directory.
func (p *ivrd) nodeID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.data, "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestClusterDatabaseOutage: PostgreSQL is down for longer than a node's silence (13 s) while
// monitored calls run on node A (driven through node B). When it is back neither node takes
// over the other's sessions: the calls go on, end when their callers hang up, and every
// notification arrives once, with the whole call recorded.
func TestClusterDatabaseOutage(t *testing.T) {
	const calls = 2
	const clusterNum = "+6561230004"
	const hangupAfter = 18 * time.Second // before the 20 s prompt ends
	nodes, a, _ := clusterNodes(t, 2)
	rcv := newFlakyReceiver(t, a)
	ivrdCmd(t, "number", "add", "--data", nodes[0].data, "--app", a.id, "--number", clusterNum, "--notify-url", rcv.url("/answer"))
	nodeA, nodeB := nodes[0], nodes[1]
	a.ivrd = "http://" + nodeB.http
	mons := &monitors{on: map[string]time.Time{}, url: map[string]string{}}
	results, driverErrs := monitoredPlays(t, a, nodeA, rcv, clusterNum, calls, hangupAfter, mons.see)
	time.Sleep(500 * time.Millisecond)
	testpg.Halt(t)
	time.Sleep(13 * time.Second)
	testpg.Resume(t)
	for i, rc := range results {
		if res := <-rc; !res.Answered || res.ByeFromServer {
			t.Errorf("caller %d: answered %v, BYE from ivrd %v (want the caller to hang up)", i, res.Answered, res.ByeFromServer)
		}
	}
	want := []string{"answer/ringing", "monitor/ongoing", "play/ended", "monitor/ended"}
	bySession := waitNotified(t, rcv, calls, want, 60*time.Second, "of PostgreSQL's return")
	time.Sleep(2 * time.Second)
	for sid := range bySession {
		got := map[string]int{}
		for _, at := range rcv.log() {
			if at.session == sid {
				got[at.key()]++
			}
		}
		for _, k := range want {
			if got[k] != 1 {
				t.Errorf("%s: %s notified %d times", sid, k, got[k])
			}
		}
		murl, _ := mons.get(sid)
		if length, tone, ok := promptTone(t, sid, murl); ok && (length < hangupAfter-5*time.Second || tone < length*6/10) {
			t.Errorf("%s: recording of %v with %v of the prompt's tone", sid, length, tone)
		}
	}
	for _, p := range nodes {
		if log := p.logText(); strings.Contains(log, "taking over its sessions") || strings.Contains(log, "dropped here") {
			t.Errorf("a session changed nodes after the outage:\n%s", tail(log, 30))
		}
	}
	if errs := driverErrs(); len(errs) > 0 {
		t.Errorf("API requests failed: %v", errs)
	}
}
