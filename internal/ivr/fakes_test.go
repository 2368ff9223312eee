package ivr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// fakeCall is an in-memory call that behaves like telephony.Leg: Play takes the audio's real
// duration; Answer goes ringing → answering → answered (held in answering while gate is open,
// like a 200 OK waiting for its ACK); Reject fails once an answer is under way; Hangup waits
// for an answer under way and then sends BYE.
type fakeCall struct {
	mu         sync.Mutex
	st         int
	gate       chan struct{} // set: an answer waits for it to close
	refuse     time.Duration // > 0: the answer is refused (488) and the call ends this much later
	answerDone chan struct{}
	onDTMF     func(rune)
	answered   bool
	rejected   int
	bye        bool // we hung up an answered call
	played     [][]int16
	tap        audio.Tap
	done       chan struct{}
	once       sync.Once
}

const (
	fcRinging = iota
	fcAnswering
	fcAnswered
	fcEnded
)

var errAnswered = errors.New("fake: call already answered")

func newFakeCall() *fakeCall { return &fakeCall{done: make(chan struct{})} }

func (c *fakeCall) Answer(ctx context.Context) error {
	c.mu.Lock()
	switch c.st {
	case fcAnswered:
		c.mu.Unlock()
		return nil
	case fcEnded:
		c.mu.Unlock()
		return ErrCallEnded
	case fcRinging:
		if c.refuse > 0 {
			c.st = fcEnded
			c.rejected = 488
			c.mu.Unlock()
			time.AfterFunc(c.refuse, c.end) // the leg finishes after the answer has failed
			return errors.New("fake: no codec in common")
		}
		c.st = fcAnswering
		c.answerDone = make(chan struct{})
		gate, ch := c.gate, c.answerDone
		go func() {
			if gate != nil {
				select {
				case <-gate:
				case <-c.done:
				}
			}
			c.mu.Lock()
			if c.st == fcAnswering {
				c.st, c.answered = fcAnswered, true
			}
			close(ch)
			c.mu.Unlock()
		}()
	}
	ch := c.answerDone
	c.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != fcAnswered {
		return ErrCallEnded
	}
	return nil
}

func (c *fakeCall) Reject(code int) error {
	c.mu.Lock()
	switch c.st {
	case fcAnswering, fcAnswered:
		c.mu.Unlock()
		return errAnswered
	case fcEnded:
		c.mu.Unlock()
		return ErrCallEnded
	}
	c.rejected = code
	c.mu.Unlock()
	c.end()
	return nil
}

func (c *fakeCall) Hangup() error {
	for {
		c.mu.Lock()
		switch c.st {
		case fcRinging:
			c.rejected = 603
		case fcAnswering:
			ch := c.answerDone
			c.mu.Unlock()
			select {
			case <-ch:
			case <-c.done:
			}
			continue
		case fcAnswered:
			c.bye = true
		}
		c.mu.Unlock()
		c.end()
		return nil
	}
}

func (c *fakeCall) Play(ctx context.Context, pcm []int16) error {
	c.mu.Lock()
	c.played = append(c.played, pcm)
	tap := c.tap
	c.mu.Unlock()
	if tap != nil {
		tap.Outbound(pcm, time.Now())
	}
	select {
	case <-time.After(audio.Duration(len(pcm))):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return errors.New("ended")
	}
}
func (c *fakeCall) Done() <-chan struct{} { return c.done }
func (c *fakeCall) AfterEnd(f func())     { go func() { <-c.done; f() }() }
func (c *fakeCall) SetTap(t audio.Tap) {
	c.mu.Lock()
	c.tap = t
	c.mu.Unlock()
}
func (c *fakeCall) OnDTMF(f func(rune)) {
	c.mu.Lock()
	c.onDTMF = f
	c.mu.Unlock()
}

// press sends a key as the caller.
func (c *fakeCall) press(keys string) {
	c.mu.Lock()
	f := c.onDTMF
	c.mu.Unlock()
	for _, k := range keys {
		f(k)
	}
}

// end ends the call (the caller hangs up, or the end of our Reject/Hangup).
func (c *fakeCall) end() {
	c.mu.Lock()
	c.st = fcEnded
	c.mu.Unlock()
	c.once.Do(func() { close(c.done) })
}

func (c *fakeCall) state() (answered bool, rejected int, plays int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered, c.rejected, len(c.played)
}

// how says how the call ended: "bye", "reject <code>", or "" (by the caller, or not yet).
func (c *fakeCall) how() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.bye:
		return "bye"
	case c.rejected != 0:
		return fmt.Sprintf("reject %d", c.rejected)
	}
	return ""
}

// statusErr is a prompt failure carrying an API status.
type statusErr string

func (e statusErr) Error() string  { return string(e) }
func (e statusErr) Status() string { return string(e) }

// fakePrompter makes 100 ms of audio per msg; msgs "!error_x" fail with status error_x.
type fakePrompter struct{}

func (fakePrompter) Check(msg string) error {
	if msg == "<bad" {
		return statusErr("error_msg_invalid_xml")
	}
	return nil
}
func (fakePrompter) Prepare(ctx context.Context, msg string) ([]int16, error) {
	if st, ok := strings.CutPrefix(msg, "!error_"); ok {
		return nil, statusErr("error_" + st)
	}
	if msg == "long" {
		return make([]int16, 3*8000), nil
	}
	return make([]int16, 800), nil
}

type fakeRecording struct {
	mu        sync.Mutex
	info      RecordingInfo
	id        string
	in, out   int
	finished  time.Time
	pauses    []string // "pause skip", "pause silence", "resume", in order
	discarded bool
}

func (r *fakeRecording) Discard() {
	r.mu.Lock()
	r.discarded = true
	r.mu.Unlock()
}

func (r *fakeRecording) Pause(at time.Time, skip bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.pauses); n > 0 && r.pauses[n-1] != "resume" {
		return false
	}
	if skip {
		r.pauses = append(r.pauses, "pause skip")
	} else {
		r.pauses = append(r.pauses, "pause silence")
	}
	return true
}

func (r *fakeRecording) Resume(at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.pauses); n == 0 || r.pauses[n-1] == "resume" {
		return false
	}
	r.pauses = append(r.pauses, "resume")
	return true
}

// paused returns the pause and resume calls so far.
func (r *fakeRecording) paused() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.pauses, ", ")
}

func (r *fakeRecording) Inbound(pcm []int16, at time.Time) {
	r.mu.Lock()
	r.in += len(pcm)
	r.mu.Unlock()
}
func (r *fakeRecording) Outbound(pcm []int16, at time.Time) {
	r.mu.Lock()
	r.out += len(pcm)
	r.mu.Unlock()
}
func (r *fakeRecording) Finish(end time.Time) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = end
	return recordingURL(r.id), nil
}

func recordingURL(id string) string {
	return "http://ivrd.test/recordings/" + id + ".mp3?Expires=1&Signature=x"
}

type fakeRecorders struct {
	mu   sync.Mutex
	recs []*fakeRecording
	gate chan struct{} // set: Start waits for it to close (a slow start)
}

func (f *fakeRecorders) Start(info RecordingInfo) (Recording, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &fakeRecording{id: info.ID, info: info}
	f.recs = append(f.recs, r)
	return r, nil
}

// fakeFiles recovers every recording with the URL its live Finish would have given; infos,
// when set, collects what it was asked for.
type fakeFiles struct {
	length time.Duration
	infos  *[]RecordingInfo
}

func (f fakeFiles) Recover(info RecordingInfo) (string, time.Duration, error) {
	if f.infos != nil {
		*f.infos = append(*f.infos, info)
	}
	return recordingURL(info.ID), f.length, nil
}

type sent struct {
	app, session, target string
	params               url.Values
	delivery             string
}

// fakeNotifier is an outbox: a delivery id is queued once (later ones are counted in dups).
type fakeNotifier struct {
	ch      chan sent
	mu      sync.Mutex
	seen    map[string]bool
	dups    int
	journal *fakeJournal // set: every notification must be journaled as owed before it is queued
	errs    []string
}

func (n *fakeNotifier) Notify(x Notification) error {
	if n.journal != nil && !n.journal.owes(x.SessionID, x.DeliveryID) {
		n.mu.Lock()
		n.errs = append(n.errs, x.DeliveryID+" queued before the journal owed it")
		n.mu.Unlock()
	}
	n.mu.Lock()
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	dup := n.seen[x.DeliveryID]
	n.seen[x.DeliveryID] = true
	if dup {
		n.dups++
	}
	n.mu.Unlock()
	if !dup {
		n.ch <- sent{x.AppID, x.SessionID, x.Target, x.Params, x.DeliveryID}
	}
	return nil
}

// fakeJournal keeps each session's last record (as JSON, like the store) and its timeline.
type fakeJournal struct {
	mu    sync.Mutex
	last  map[string][]byte
	steps map[string][]Entry
	fail  error // returned by SaveSession when set
}

func (j *fakeJournal) SaveSession(s SessionRecord, steps []Entry) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	if j.last == nil {
		j.last = map[string][]byte{}
	}
	if j.steps == nil {
		j.steps = map[string][]Entry{}
	}
	j.last[s.ID] = data
	j.steps[s.ID] = append(j.steps[s.ID], steps...)
	return nil
}

func (j *fakeJournal) Unfinished() ([]SessionRecord, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []SessionRecord
	for _, data := range j.last {
		rec, err := DecodeRecord(data)
		if err != nil {
			return nil, err
		}
		if rec.Phase != PhaseEnded {
			out = append(out, rec)
		}
	}
	return out, nil
}

// owes reports whether session's journaled record owes the notification with delivery id d.
func (j *fakeJournal) owes(session, d string) bool {
	j.mu.Lock()
	data := j.last[session]
	j.mu.Unlock()
	rec, err := DecodeRecord(data)
	if err != nil {
		return false
	}
	for _, o := range rec.Owed {
		if o.final() && DeliveryID(session, o.ID) == d {
			return true
		}
	}
	return false
}

// record returns session id's journaled record.
func (j *fakeJournal) record(t testing.TB, id string) SessionRecord {
	t.Helper()
	j.mu.Lock()
	data := j.last[id]
	j.mu.Unlock()
	rec, err := DecodeRecord(data)
	if err != nil {
		t.Fatalf("journal of %s: %v", id, err)
	}
	return rec
}

type fakeResolver struct{}

func (fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if host == "unresolvable.invalid" {
		return nil, errors.New("no such host")
	}
	return []string{"127.0.0.1"}, nil
}

// rig is an engine wired to fakes.
type rig struct {
	t    *testing.T
	e    *Engine
	n    *fakeNotifier
	recs *fakeRecorders
	j    *fakeJournal
}

func newRig(t *testing.T, cfg Config) *rig {
	r := &rig{t: t, n: &fakeNotifier{ch: make(chan sent, 100)}, recs: &fakeRecorders{}, j: &fakeJournal{}}
	r.n.journal = r.j
	t.Cleanup(func() {
		r.n.mu.Lock()
		defer r.n.mu.Unlock()
		for _, e := range r.n.errs {
			t.Error(e)
		}
	})
	r.e = New(cfg, Deps{Prompter: fakePrompter{}, Recorders: r.recs, Notifier: r.n, Journal: r.j, Resolver: fakeResolver{}})
	return r
}

// next waits for the next notification.
func (r *rig) next() sent {
	r.t.Helper()
	select {
	case s := <-r.n.ch:
		return s
	case <-time.After(5 * time.Second):
		r.t.Fatal("no notification")
	}
	return sent{}
}

// quiet asserts no notification arrives for d.
func (r *rig) quiet(d time.Duration) {
	r.t.Helper()
	select {
	case s := <-r.n.ch:
		r.t.Fatalf("unexpected notification %v", s.params)
	case <-time.After(d):
	}
}

// incoming starts a ringing call for app "A1" and consumes its Answer notification.
func (r *rig) incoming() (*fakeCall, string) {
	r.t.Helper()
	c := newFakeCall()
	sid, err := r.e.Incoming(c, "A1", "http://app.test/answer", "+6511111111", "+6561234567")
	if err != nil {
		r.t.Fatal(err)
	}
	a := r.next()
	if a.params.Get("ivr_block") != "answer" || a.params.Get("call_state") != "ringing" || a.params.Get("session") != sid {
		r.t.Fatalf("answer notification: %v", a.params)
	}
	return c, sid
}

func (r *rig) do(block string, p Params) string {
	r.t.Helper()
	return r.e.Handle(context.Background(), "A1", block, p).Status
}
