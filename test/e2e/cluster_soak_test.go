package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/store"
	"github.com/ivrd/ivrd/internal/testpeer"
)

// TestSoakClusterNodeDies (make soak): three nodes on PostgreSQL and S3 behind Kamailio. 60
// monitored calls come in through Kamailio (spread over the nodes); the app drives them all
// through the third node's API (the other nodes' sessions forwarded). Node A is SIGKILLed with
// its calls live and never restarted: within 30 s the others end A's calls, rebuild their
// recordings from the S3 pieces (each losing at most 5 s, the prompt's tone decoded in them) and
// notify each once; the calls on the other nodes go on untouched until their callers hang up
// and are recorded whole; Kamailio sends no new call to A.
func TestSoakClusterNodeDies(t *testing.T) {
	soak(t)
	const calls = 60
	const hangupAfter = 30 * time.Second // monitoredPlays gives a call 40 s
	const clusterNum = "+6561230003"
	nodes, a, dsn := clusterNodes(t, 3)
	rcv := newFlakyReceiver(t, a)
	ivrdCmd(t, "number", "add", "--data", nodes[0].data, "--app", a.id, "--number", clusterNum, "--notify-url", rcv.url("/answer"))
	ks := testpeer.Dispatcher{Nodes: []string{nodes[0].sip, nodes[1].sip, nodes[2].sip}, ProbeInterval: 1}.Start(t)
	a.ivrd = "http://" + nodes[2].http

	mons := &monitors{on: map[string]time.Time{}, url: map[string]string{}}
	results, driverErrs := monitoredPlays(t, a, &ivrd{sip: ks.Addr}, rcv, clusterNum, calls, hangupAfter, mons.see)
	st, err := store.OpenPostgres(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	owner := map[string]string{} // session → node id
	perNode := map[string]int{}
	for _, sid := range mons.sessions() {
		row, err := st.Session(sid)
		if err != nil {
			t.Fatal(err)
		}
		owner[sid] = row.Node
		perNode[row.Node]++
	}
	idA := nodes[0].nodeID(t)
	if len(perNode) != 3 || perNode[idA] == 0 {
		t.Fatalf("calls per node: %v (node A is %s)", perNode, idA)
	}
	time.Sleep(7 * time.Second) // pieces of every recording reach S3 (every 3 s)
	killed := time.Now()
	nodes[0].kill()

	// A's callers get a BYE within 30 s; the others hang up themselves.
	byCaller := 0
	for i, rc := range results {
		res := <-rc
		switch {
		case !res.Answered:
			t.Errorf("caller %d not answered", i)
		case res.ByeFromServer:
			byCaller++
			if res.ByeAt.After(killed.Add(30 * time.Second)) {
				t.Errorf("caller %d got its BYE %v after the kill", i, res.ByeAt.Sub(killed))
			}
		}
	}
	if byCaller != perNode[idA] {
		t.Errorf("%d callers got a BYE from ivrd, node A carried %d calls", byCaller, perNode[idA])
	}

	// Kamailio noticed; new calls go to the live nodes.
	for !strings.Contains(ks.Log(), "dispatcher: node sip:"+nodes[0].sip+" down") {
		if time.Since(killed) > 20*time.Second {
			t.Fatal("Kamailio did not notice node A's death")
		}
		time.Sleep(200 * time.Millisecond)
	}
	before := strings.Count(ks.Log(), "to sip:"+nodes[0].sip)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var late []<-chan testpeer.Result
	for range 6 {
		late = append(late, peerCall(ctx, t, testpeer.Call{Target: ks.Addr, Number: strings.TrimPrefix(clusterNum, "+"), From: callerNum,
			HangupAfter: 3 * time.Second, Timeout: 30 * time.Second}))
		time.Sleep(200 * time.Millisecond)
	}
	for i, rc := range late {
		if res := <-rc; !res.Answered {
			t.Errorf("call %d after A's death not answered (%d)", i, res.Status)
		}
	}
	if n := strings.Count(ks.Log(), "to sip:"+nodes[0].sip) - before; n != 0 {
		t.Errorf("%d new calls sent to the dead node", n)
	}

	// Every session: its notifications once each, its recording decoded.
	want := []string{"answer/ringing", "monitor/ongoing", "monitor/ended"}
	waitNotifiedAll := func() {
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			by := map[string][]attempt{}
			for _, at := range rcv.log() {
				by[at.session] = append(by[at.session], at)
			}
			ended := 0
			for sid := range owner {
				for _, at := range by[sid] {
					if at.key() == "monitor/ended" && at.code == 200 {
						ended++
					}
				}
			}
			if ended >= len(owner) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d sessions notified monitor ended", ended, len(owner))
			}
		}
	}
	waitNotifiedAll()
	time.Sleep(3 * time.Second) // a notification sent twice would show by now
	by := map[string][]attempt{}
	for _, at := range rcv.log() {
		by[at.session] = append(by[at.session], at)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	var slowest time.Duration
	for sid, node := range owner {
		got, ids := map[string]int{}, map[string]bool{}
		for _, at := range by[sid] {
			got[at.key()]++
			if ids[at.id] {
				t.Errorf("%s: delivery %s attempted twice", sid, at.id)
			}
			ids[at.id] = true
			if node == idA && at.key() == "monitor/ended" && at.at.Sub(killed) > slowest {
				slowest = at.at.Sub(killed)
			}
		}
		for _, k := range want {
			if got[k] != 1 {
				t.Errorf("%s (node %s): %s notified %d times", sid, node, k, got[k])
			}
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			murl, on := mons.get(sid)
			length, tone, ok := promptTone(t, sid, murl)
			if !ok {
				return
			}
			if node == idA {
				recorded := killed.Sub(on)
				if length < recorded-5*time.Second || length > recorded+time.Second || tone < length*6/10 {
					t.Errorf("%s (killed node): %v recorded before the kill, %v rebuilt, %v of tone", sid, recorded, length, tone)
				}
				return
			}
			if length < hangupAfter-10*time.Second || tone < 15*time.Second { // the prompt is 20 s
				t.Errorf("%s (live node): recording of %v with %v of tone", sid, length, tone)
			}
		})
	}
	wg.Wait()
	if slowest > 30*time.Second {
		t.Errorf("the last of node A's Monitor ended notifications came %v after its death", slowest)
	}
	if errs := driverErrs(); len(errs) > 0 {
		t.Errorf("API requests failed: %v", errs)
	}
	t.Logf("%d calls over 3 nodes %v; node A's %d settled by the others, the last notified %v after its death",
		len(owner), perNode, perNode[idA], slowest.Round(100*time.Millisecond))
}
