package ivr

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// outbox is the fuzz harness's notifier: it stores each delivery id once, as the store's
// outbox does, and fails the test if a repeated id comes with other content.
type outbox struct {
	t     testing.TB
	mu    sync.Mutex
	body  map[string]string
	order []string // delivery ids, in the order first queued
	state map[string]string
	dups  int
}

func (o *outbox) Notify(n Notification) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	body := n.Target + "?" + n.Params.Encode()
	if prev, ok := o.body[n.DeliveryID]; ok {
		if prev != body {
			o.t.Fatalf("delivery id %s queued again with other content:\n  %s\n  %s", n.DeliveryID, prev, body)
		}
		o.dups++
		return nil
	}
	o.body[n.DeliveryID] = body
	o.state[n.DeliveryID] = n.Params.Get("call_state")
	o.order = append(o.order, n.DeliveryID)
	return nil
}

// noFiles recovers every recording as "nothing recorded" except those named rec-*, which get a URL.
type noFiles struct{}

func (noFiles) Recover(info RecordingInfo) (string, time.Duration, error) {
	return "http://ivrd.test/recordings/" + info.ID + ".mp3", 3 * time.Second, nil
}

// machineHarness drives one session's machine through the engine's own flush (journal, then
// queue) and recovery, with the journal and the outbox surviving simulated crashes.
type machineHarness struct {
	t   *testing.T
	e   *Engine
	s   *session
	j   *fakeJournal
	out *outbox
	clk *fixedClock
}

func newMachineHarness(t *testing.T, dial bool) *machineHarness {
	h := &machineHarness{t: t, j: &fakeJournal{}, clk: &fixedClock{time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}}
	h.out = &outbox{t: t, body: map[string]string{}, state: map[string]string{}}
	h.e = New(Config{}, Deps{Notifier: h.out, Journal: h.j})
	h.s = &session{m: machine{now: h.clk.now, rec: SessionRecord{ID: "S1", AppID: "A1", TxnRef: "TX1",
		AnswerURL: "http://app.test/answer", From: "+6511111111", StartedAt: h.clk.t}}}
	var err error
	if dial {
		h.s.m.rec.Dest, h.s.m.rec.From = "+6590000001", ""
		_, err = h.s.m.dial(acceptance{name: "dial", target: "http://app.test/d", extra: map[string]string{"dest": "+6590000001"}})
	} else {
		err = h.s.m.incoming(nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	h.flush()
	return h
}

func (h *machineHarness) flush() {
	if err := h.e.flush(h.s); err != nil {
		h.t.Fatal(err)
	}
}

// journalOnly journals like flush and then "crashes" before queueing anything.
func (h *machineHarness) journalOnly() {
	news := h.s.m.takeNews()
	if err := h.j.SaveSession(h.s.m.rec.clone(), news); err != nil {
		h.t.Fatal(err)
	}
}

// crash drops the live machine and settles the session from its journal.
func (h *machineHarness) crash() {
	rec := h.j.record(h.t, "S1")
	if rec.Phase == PhaseEnded {
		h.s = &session{m: machine{now: h.clk.now, rec: rec}}
		return
	}
	if _, err := h.e.recoverSession(rec, noFiles{}); err != nil {
		h.t.Fatalf("recovery: %v", err)
	}
	h.s = &session{m: machine{now: h.clk.now, rec: h.j.record(h.t, "S1")}}
	if h.s.m.rec.Phase != PhaseEnded {
		h.t.Fatalf("recovery left phase %s", h.s.m.rec.Phase)
	}
}

// step applies one fuzzed operation. Illegal transitions are expected; they must change nothing.
func (h *machineHarness) step(op byte) {
	m := &h.s.m
	h.clk.t = h.clk.t.Add(7 * time.Second)
	cur := 0
	if m.rec.Current != nil {
		cur = m.rec.Current.Run
	}
	before, _ := json.Marshal(m.rec)
	newsBefore := len(m.news)
	var err error
	switch op % 28 {
	case 0:
		_, err = m.accept(acceptance{name: "play", target: "http://app.test/p"})
	case 1:
		_, err = m.accept(acceptance{name: "gather", target: "http://app.test/g", extra: map[string]string{"digits": ""}})
	case 2:
		_, err = m.accept(acceptance{name: "hold", silent: true})
	case 3:
		_, err = m.accept(acceptance{name: "hangup", force: true, end: true, target: "http://app.test/h"})
	case 4:
		_, err = m.accept(acceptance{name: "unhold", target: "http://app.test/u"})
	case 5:
		err = m.answering(cur)
	case 6:
		err = m.answered(nil)
	case 7:
		err = m.dialed(DialAnswered, nil)
	case 8:
		err = m.dialed(DialBusy, nil)
	case 9:
		err = m.fail("answer failed")
	case 10:
		err = m.timeout()
	case 11:
		err = m.recording(cur, "monitor", "rec-m", "http://app.test/m", "t", m.clock())
	case 12:
		err = m.recording(cur, "record", "rec-r", "", "", m.clock())
	case 13:
		err = m.done(cur, map[string]string{"digits": "12"}, false)
	case 14:
		err = m.done(cur, nil, true)
	case 15:
		err = m.done(cur-1, nil, false) // a block overtaken earlier
	case 16:
		err = m.down("far end hung up", m.clock())
	case 17:
		err = m.stored("http://ivrd.test/recordings/rec-m.mp3")
	case 18:
		err = m.settle(nil)
	case 19:
		err = m.close()
	case 20, 21:
		h.flush()
		return
	case 22:
		h.journalOnly()
		h.crash()
		return
	case 23:
		h.crash()
		return
	case 24:
		_, err = m.accept(acceptance{name: "monitor", target: "http://app.test/n"})
	case 25:
		_, err = m.accept(acceptance{name: "play", end: true}) // no notify_url: hangs up after
	case 26:
		err = m.pause([]string{PauseSilence, PauseSkip}[int(op/28)%2], m.clock())
	case 27:
		err = m.resume(m.clock())
	}
	if err != nil {
		var ie *IllegalError
		if !errors.As(err, &ie) {
			h.t.Fatalf("op %d: %v", op, err)
		}
		if after, _ := json.Marshal(m.rec); string(after) != string(before) || len(m.news) != newsBefore {
			h.t.Fatalf("op %d: refused transition %v changed the session", op, err)
		}
	}
	h.invariants()
}

func (h *machineHarness) invariants() {
	rec := h.s.m.rec
	ids := map[int]bool{}
	for _, o := range rec.Owed {
		if o.final() {
			if ids[o.ID] || o.ID > rec.NextID || o.CallState == "" || o.Notice.Target == "" {
				h.t.Fatalf("bad owed item %+v (next id %d)", o, rec.NextID)
			}
			ids[o.ID] = true
		}
	}
	switch rec.Phase {
	case PhaseEnded:
		if len(rec.Owed) > 0 {
			h.t.Fatalf("ended but owes %+v", rec.Owed)
		}
	case PhaseSettled:
		if h.s.m.awaitingBlocks() || rec.Line != LineDown {
			h.t.Fatalf("settled with %+v", rec)
		}
	}
}

// end settles whatever is left (a crash at the end of every sequence) and checks what the
// app got: every notification journaled as owed was queued once, nothing says ongoing after
// a notification said ended, and the session is over.
func (h *machineHarness) end() {
	h.crash()
	var owed []string
	h.j.mu.Lock()
	for _, e := range h.j.steps["S1"] {
		if e.Event == stepOwe && e.Delivery != "" {
			owed = append(owed, e.Delivery)
		}
	}
	h.j.mu.Unlock()
	for _, d := range owed {
		if _, ok := h.out.body[d]; !ok {
			h.t.Fatalf("journaled as owed, never queued: %s (queued %v)", d, h.out.order)
		}
	}
	slices.Sort(owed)
	queued := slices.Sorted(slices.Values(h.out.order))
	if !slices.Equal(queued, owed) {
		h.t.Fatalf("queued %v, journaled as owed %v", queued, owed)
	}
	ended := false
	for _, d := range h.out.order {
		st := h.out.state[d]
		if ended && st != StateEnded {
			h.t.Fatalf("%s says %s after an ended notification (%v)", d, st, h.out.order)
		}
		ended = ended || st == StateEnded
	}
	rec := h.j.record(h.t, "S1")
	if rec.Phase != PhaseEnded || len(rec.Owed) != 0 {
		h.t.Fatalf("journal after the end: %+v", rec)
	}
	// Unless its last block had no notify_url ("hang up after the block, send nothing").
	if !ended && (rec.Last == nil || rec.Last.Notice.Target != "") {
		h.t.Fatalf("the app never learnt the call ended: %v, last %+v", h.out.order, rec.Last)
	}
	for _, r := range rules {
		m := h.s.m
		if err := fire(&m, r.event); err == nil {
			h.t.Fatalf("%s left ended", r.event)
		}
	}
}

// FuzzSessionMachine drives a session through random transition sequences, with flushes,
// crashes between journaling and queueing, and recovery: a settled session owes nothing, each
// owed notification is queued once (a repeat carries the same content), ended is terminal,
// nothing says ongoing after the end, and the app always learns that the call ended.
func FuzzSessionMachine(f *testing.F) {
	f.Add([]byte{0, 24, 5, 6, 11, 13, 20, 0, 20, 16, 17, 21, 18, 21, 19})  // Monitor, Play, hang-up, settle
	f.Add([]byte{0, 24, 5, 3, 6, 15, 14, 20, 16, 20})                      // forced Hangup while the Monitor answers
	f.Add([]byte{1, 7, 13, 20, 2, 20, 4, 20, 14, 20, 16, 22})              // Dial, Hold, Unhold, crash
	f.Add([]byte{1, 8, 13, 20, 18, 20, 19, 20})                            // a failed Dial
	f.Add([]byte{0, 1, 5, 9, 13, 20, 16, 20})                              // answer refused mid-Gather
	f.Add([]byte{0, 0, 5, 6, 20, 12, 22})                                  // crash mid-Record
	f.Add([]byte{0, 20, 10, 20, 16, 20, 18, 20, 19, 20, 0, 3})             // idle timeout while ringing
	f.Add([]byte{0, 24, 5, 6, 11, 13, 21, 25, 20, 13, 16, 20, 17, 20, 23}) // Play without notify_url ends it
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 || len(ops) > 200 {
			return
		}
		h := newMachineHarness(t, ops[0]%2 == 1)
		for _, op := range ops[1:] {
			h.step(op)
		}
		h.end()
	})
}

// TestNotificationParamsStable: a final notification's content does not change as the session
// goes on (so a repeat after a crash is the same notification).
func TestNotificationParamsStable(t *testing.T) {
	h := newMachineHarness(t, false)
	for _, op := range []byte{0, 5, 6, 13, 21, 16} {
		h.step(op)
	}
	rec := h.s.m.rec
	var b Billing
	first := map[int]url.Values{}
	for _, o := range h.s.m.ready() {
		first[o.ID] = b.notification(rec, o).Params
	}
	h.step(18)
	rec = h.s.m.rec
	for _, o := range h.s.m.rec.Owed {
		if p, ok := first[o.ID]; ok && p.Encode() != b.notification(rec, o).Params.Encode() {
			t.Fatalf("notification %d changed", o.ID)
		}
	}
}

// FuzzRecoverRecord feeds recovery arbitrary journal rows (a corrupted or foreign database):
// decoding and settling never panic, and a session recovery reports settled is journaled
// ended, owing nothing.
func FuzzRecoverRecord(f *testing.F) {
	f.Add([]byte(`{"id":"S1","app_id":"A1","phase":"idle","line":"up","last":{"kind":"block","run":1,"notice":{"block":"play","target":"http://a.test/p"},"call_state":"ongoing"}}`))
	f.Add([]byte(`{"id":"S1","app_id":"A1","phase":"running","line":"up","current":{"run":2,"name":"record"},"owed":[{"kind":"block","run":2,"notice":{"block":"record","target":"http://a.test/r"},"recording":"rec-1"},{"id":3,"kind":"block","run":1,"notice":{"block":"play","target":"http://a.test/p"},"call_state":"ongoing"}],"next_id":3}`))
	f.Add([]byte(`{"id":"S1","app_id":"A1","phase":"settled","line":"down","owed":[{"id":1,"kind":"end","notice":{"block":"answer","target":"http://a.test/a"},"call_state":"ended"}],"next_id":1}`))
	f.Add([]byte(`{"id":"S1","app_id":"A1","state":"ongoing","pending":{"block":"gather","target":"http://a.test/g"},"monitor":{"recording_id":"rec-1","target":"http://a.test/m"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeRecord(data)
		if err != nil || rec.ID == "" {
			return
		}
		out := &outbox{t: t, body: map[string]string{}, state: map[string]string{}}
		j := &fakeJournal{}
		e := New(Config{}, Deps{Notifier: out, Journal: j})
		if _, err := e.recoverSession(rec, noFiles{}); err != nil {
			return
		}
		if got := j.record(t, rec.ID); got.Phase != PhaseEnded || len(got.Owed) != 0 {
			t.Fatalf("recovered to %+v", got)
		}
	})
}
