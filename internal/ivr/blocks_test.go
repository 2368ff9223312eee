package ivr

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
)

// fakeTel is an in-memory trunk: dests map to outcomes; answered calls are fakeCalls.
type fakeTel struct {
	mu        sync.Mutex
	outcomes  map[string]string
	dialed    []*fakeCall
	earlyTo   []Call // each Dial's earlyTo
	bridged   int
	rooms     map[string][]Call
	cancelled int      // dials given up (CANCEL) while ringing
	sessions  []string // the session each Dial's context named
}

// ringForever is a destination that rings until the dial is given up.
const ringForever = "+6590000009"

func (f *fakeTel) Dial(ctx context.Context, dest, callerID string, earlyTo Call) (Call, string, error) {
	if dest == ringForever {
		<-ctx.Done()
		f.mu.Lock()
		f.cancelled++
		f.mu.Unlock()
		return nil, DialUnanswered, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = append(f.sessions, calllog.Session(ctx))
	f.earlyTo = append(f.earlyTo, earlyTo)
	o := f.outcomes[dest]
	if o == "" {
		o = DialAnswered
	}
	if o != DialAnswered {
		return nil, o, nil
	}
	c := newFakeCall()
	c.answered, c.st = true, fcAnswered
	f.dialed = append(f.dialed, c)
	return c, o, nil
}
func (f *fakeTel) Bridge(a, b Call) func() {
	f.mu.Lock()
	f.bridged++
	f.mu.Unlock()
	return func() {}
}
func (f *fakeTel) JoinRoom(id string, create bool, c Call) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rooms == nil {
		f.rooms = map[string][]Call{}
	}
	if _, ok := f.rooms[id]; !ok && !create {
		return nil, ErrNoRoom
	}
	f.rooms[id] = append(f.rooms[id], c)
	return func() {}, nil
}
func (f *fakeTel) RoomExists(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.rooms[id]
	return ok
}

func telRig(t *testing.T) (*rig, *fakeTel) {
	r := newRig(t, Config{})
	tel := &fakeTel{outcomes: map[string]string{"+6590000002": DialBusy, "+6590000003": DialUnanswered}}
	r.e.d.Telephony, r.e.d.Trunk = tel, true
	return r, tel
}

func TestGather(t *testing.T) {
	cases := []struct {
		name   string
		params Params
		keys   string // pressed after the block starts
		want   string
	}{
		{"until hash", Params{}, "123#", "123"},
		{"max digits", Params{"max_digits": "2"}, "4567", "45"},
		{"timeout", Params{"timeout": "1"}, "9", "9"},
		{"nothing", Params{"timeout": "1"}, "", ""},
		{"star kept", Params{}, "*0#", "*0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, Config{})
			call, sid := r.incoming()
			p := Params{"session": sid, "notify_url": "http://app.test/g", "msg": "enter"}
			for k, v := range c.params {
				p[k] = v
			}
			if st := r.do("gather", p); st != StatusOK {
				t.Fatal(st)
			}
			time.Sleep(20 * time.Millisecond)
			call.press(c.keys)
			n := r.next()
			if n.params.Get("ivr_block") != "gather" || n.params.Get("digits") != c.want || !n.params.Has("digits") {
				t.Fatalf("digits %q, want %q (%v)", n.params.Get("digits"), c.want, n.params)
			}
		})
	}
}

func TestGatherRepeatsPrompt(t *testing.T) {
	r := newRig(t, Config{})
	call, sid := r.incoming()
	if st := r.do("gather", Params{"session": sid, "notify_url": "http://app.test/g", "msg": "enter", "timeout": "1", "attempts": "2"}); st != StatusOK {
		t.Fatal(st)
	}
	time.Sleep(1300 * time.Millisecond) // first attempt times out, prompt plays again
	call.press("7#")
	if n := r.next(); n.params.Get("digits") != "7" {
		t.Fatal(n.params)
	}
	if _, _, plays := call.state(); plays != 2 {
		t.Fatalf("prompt played %d times, want 2", plays)
	}
}

func TestRecordBlock(t *testing.T) {
	r := newRig(t, Config{})
	call, sid := r.incoming()
	if st := r.do("record", Params{"session": sid, "notify_url": "http://app.test/r", "max_duration": "5"}); st != StatusOK {
		t.Fatal(st)
	}
	time.Sleep(500 * time.Millisecond) // beep
	call.mu.Lock()
	tap := call.tap
	call.mu.Unlock()
	tap.Inbound(make([]int16, 160), time.Now())
	call.press("#")
	n := r.next()
	if n.params.Get("ivr_block") != "record" || n.params.Get("record_url") == "" || n.params.Get("call_state") != "ongoing" {
		t.Fatal(n.params)
	}
	if rec := r.recs.recs[0]; rec.in != 160 || rec.finished.IsZero() {
		t.Fatalf("record got %d inbound samples", rec.in)
	}
	// Hang-up mid-recording: the partial recording is still delivered.
	if st := r.do("record", Params{"session": sid, "notify_url": "http://app.test/r"}); st != StatusOK {
		t.Fatal(st)
	}
	time.Sleep(500 * time.Millisecond)
	call.end()
	if n := r.next(); n.params.Get("record_url") == "" || n.params.Get("call_state") != "ended" {
		t.Fatal(n.params)
	}
}

func TestHoldUnhold(t *testing.T) {
	r := newRig(t, Config{})
	r.e.d.HoldMusic = make([]int16, 800)
	call, sid := r.incoming()
	if st := r.do("unhold", Params{"session": sid}); st != StatusSessionNotOnHold {
		t.Fatal(st)
	}
	if st := r.do("hold", Params{"session": sid}); st != StatusOK {
		t.Fatal(st)
	}
	if st := r.do("play", Params{"session": sid, "msg": "x", "notify_url": "http://app.test/p"}); st != StatusSessionNotReady {
		t.Fatal(st)
	}
	time.Sleep(250 * time.Millisecond) // the music loops
	if st := r.do("unhold", Params{"session": sid, "tag": "u", "notify_url": "http://app.test/u"}); st != StatusOK {
		t.Fatal(st)
	}
	if n := r.next(); n.params.Get("ivr_block") != "unhold" || n.params.Get("call_state") != "ongoing" || n.params.Get("tag") != "u" {
		t.Fatal(n.params)
	}
	if _, _, plays := call.state(); plays < 2 {
		t.Fatalf("hold music played %d times", plays)
	}
	if st := r.do("play", Params{"session": sid, "msg": "x", "notify_url": "http://app.test/p"}); st != StatusOK {
		t.Fatal(st)
	}
	r.next()
	// Held, then a forced hangup.
	if st := r.do("hold", Params{"session": sid, "msg": "wait"}); st != StatusOK {
		t.Fatal(st)
	}
	if st := r.do("hangup", Params{"session": sid, "force": "enabled", "notify_url": "http://app.test/h"}); st != StatusOK {
		t.Fatal(st)
	}
	if n := r.next(); n.params.Get("ivr_block") != "hangup" || n.params.Get("call_state") != "ended" {
		t.Fatal(n.params)
	}
}

func TestDialOutcomes(t *testing.T) {
	r, tel := telRig(t)
	res := r.e.Handle(context.Background(), "A1", "dial", Params{"dest": "+6590000001", "msg": "hi", "tag": "d", "notify_url": "http://app.test/d", "max_duration": "1"})
	if res.Status != StatusOK || res.Fields["session"] == "" || res.Fields["txn_ref"] == "" {
		t.Fatal(res)
	}
	n := r.next()
	if n.params.Get("ivr_block") != "dial" || n.params.Get("dial_status") != "answered" || n.params.Get("dest") != "+6590000001" ||
		n.params.Get("call_state") != "ongoing" || n.session != res.Fields["session"] {
		t.Fatal(n.params)
	}
	// max_duration hangs up; the app learns it from the last notification again.
	if n := r.next(); n.params.Get("call_state") != "ended" || n.params.Get("duration") != "1" {
		t.Fatal(n.params)
	}
	if !isDone(tel.dialed[0]) {
		t.Fatal("max_duration did not hang up")
	}
	if tel.earlyTo[0] != nil {
		t.Fatal("a Dial block's call has nobody to hear its early media")
	}
	for dest, want := range map[string]string{"+6590000002": "busy", "+6590000003": "unanswered"} {
		if st := r.e.Handle(context.Background(), "A1", "dial", Params{"dest": dest, "notify_url": "http://app.test/d"}).Status; st != StatusOK {
			t.Fatal(st)
		}
		if n := r.next(); n.params.Get("dial_status") != want || n.params.Get("call_state") != "ended" {
			t.Fatal(dest, n.params)
		}
	}
}

func TestTransfer(t *testing.T) {
	r, tel := telRig(t)
	call, sid := r.incoming()
	if st := r.do("transfer", Params{"session": sid, "dest": "+6590000002", "on_failure": "continue", "notify_url": "http://app.test/t"}); st != StatusOK {
		t.Fatal(st)
	}
	if n := r.next(); n.params.Get("transfer_status") != "busy" || n.params.Get("call_state") != "ongoing" {
		t.Fatal(n.params)
	}
	if st := r.do("transfer", Params{"session": sid, "dest": "+6590000001", "notify_url": "http://app.test/t"}); st != StatusOK {
		t.Fatal(st)
	}
	time.Sleep(100 * time.Millisecond)
	if st := r.do("play", Params{"session": sid}); st != StatusSessionEnded {
		t.Fatal(st)
	}
	tel.mu.Lock()
	far := tel.dialed[0]
	tel.mu.Unlock()
	far.end() // the far party hangs up: the transferred call is over
	if n := r.next(); n.params.Get("transfer_status") != "answered" || n.params.Get("call_state") != "ended" {
		t.Fatal(n.params)
	}
	tel.mu.Lock()
	bridged := tel.bridged
	tel.mu.Unlock()
	if !isDone(call) || bridged != 1 {
		t.Fatal("caller not hung up or not bridged")
	}
	tel.mu.Lock()
	defer tel.mu.Unlock()
	for i, c := range tel.earlyTo {
		if c != Call(call) {
			t.Fatalf("transfer %d: the far end's early media goes to %v, not the caller", i, c)
		}
	}
}

func TestTransferToRoom(t *testing.T) {
	r, tel := telRig(t)
	c1, s1 := r.incoming()
	res := r.e.Handle(context.Background(), "A1", "transfer", Params{"session": s1, "dest": "room:", "notify_url": "http://app.test/t"})
	room := res.Fields["room"]
	if res.Status != StatusOK || room == "" {
		t.Fatal(res)
	}
	time.Sleep(50 * time.Millisecond)
	_, s2 := r.incoming()
	if st := r.do("transfer", Params{"session": s2, "dest": "room:" + room, "notify_url": "http://app.test/t"}); st != StatusOK {
		t.Fatal(st)
	}
	_, s3 := r.incoming()
	if st := r.do("transfer", Params{"session": s3, "dest": "room:nosuchroom"}); st != StatusInvalidRoom {
		t.Fatal(st)
	}
	time.Sleep(50 * time.Millisecond)
	tel.mu.Lock()
	members := len(tel.rooms[room])
	tel.mu.Unlock()
	if members != 2 {
		t.Fatalf("room has %d", members)
	}
	c1.end()
	if n := r.next(); n.params.Get("room") != room || n.params.Get("transfer_status") != "answered" || n.params.Get("call_state") != "ended" {
		t.Fatal(n.params)
	}
}

func TestCallLimit(t *testing.T) {
	r := newRig(t, Config{MaxCallsPerApp: 1})
	r.e.d.Telephony, r.e.d.Trunk = &fakeTel{}, true
	r.incoming()
	if _, err := r.e.Incoming(newFakeCall(), "A1", "", "+1", "+2"); err != ErrCallLimit {
		t.Fatal(err)
	}
	if st := r.e.Handle(context.Background(), "A1", "dial", Params{"dest": "+6590000001"}).Status; st != StatusCallLimitReached {
		t.Fatal(st)
	}
}
