package ivr

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// fakeCall is an in-memory call: Play takes the audio's real duration.
type fakeCall struct {
	mu       sync.Mutex
	onDTMF   func(rune)
	answered bool
	rejected int
	played   [][]int16
	tap      audio.Tap
	done     chan struct{}
	once     sync.Once
}

func newFakeCall() *fakeCall { return &fakeCall{done: make(chan struct{})} }

func (c *fakeCall) Answer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered = true
	return nil
}
func (c *fakeCall) Reject(code int) error {
	c.mu.Lock()
	c.rejected = code
	c.mu.Unlock()
	c.end()
	return nil
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
func (c *fakeCall) Hangup() error         { c.end(); return nil }
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

func (c *fakeCall) end() { c.once.Do(func() { close(c.done) }) }
func (c *fakeCall) state() (answered bool, rejected int, plays int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered, c.rejected, len(c.played)
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
	return make([]int16, 800), nil
}

type fakeRecording struct {
	mu       sync.Mutex
	id       string
	in, out  int
	finished time.Time
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
	return "http://ivrd.test/recordings/" + r.id + ".mp3?Expires=1&Signature=x", nil
}

type fakeRecorders struct {
	mu   sync.Mutex
	recs []*fakeRecording
}

func (f *fakeRecorders) Start(info RecordingInfo) (Recording, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &fakeRecording{id: info.ID}
	f.recs = append(f.recs, r)
	return r, nil
}

type sent struct {
	app, session, target string
	params               url.Values
}

type fakeNotifier struct{ ch chan sent }

func (n *fakeNotifier) Notify(appID, sessionID, target string, params url.Values) error {
	n.ch <- sent{appID, sessionID, target, params}
	return nil
}

type fakeJournal struct {
	mu   sync.Mutex
	last map[string]SessionRecord
}

func (j *fakeJournal) SaveSession(s SessionRecord) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.last == nil {
		j.last = map[string]SessionRecord{}
	}
	j.last[s.ID] = s
	return nil
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
