// Package ivr is ivrd's call-flow engine: sessions, the API's order of checks, and the blocks
// (Monitor, Play, Hangup, ...). It does no network or disk I/O of its own: calls, prompts,
// recordings, persistence and notifications come in through the interfaces in deps.go, so the
// whole state machine can be tested with in-memory parts.
//
// Each session has one phase and a list of notifications it owes the app (machine.go, table
// in phase.go and phases.md). Every transition is journaled before its effects: the engine
// changes the machine under its lock, then flush journals the record and only then queues
// the notifications that became final, each under a delivery id derived from the session, so
// the outbox stores it once even when a crash repeats the queueing.
package ivr

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/calllog"
	"github.com/ivrd/ivrd/internal/metrics"
)

// Config tunes the engine.
type Config struct {
	IdleTimeout    time.Duration // after a notification with no next block: hang up (default 60 s)
	MaxCallsPerApp int           // concurrent calls per app, incoming and outgoing (0: no limit)
	PrepareBudget  time.Duration // how long a request may wait for msg synthesis/download (default 10 s)
	KeepEnded      time.Duration // how long ended sessions answer error_session_ended (default 1 h)
	Billing        Billing
}

// Deps are the engine's effects.
type Deps struct {
	Prompter  Prompter
	Recorders Recorders
	Notifier  Notifier
	Journal   Journal
	Telephony Telephony // calls, bridges and rooms; nil: none
	Trunk     bool      // numbers can be dialled (Dial, Transfer to a number)
	Resolver  Resolver  // nil: notify_url hosts are not resolved
	Outbound  Outbound  // where notify_url may point; nil: anywhere
	HoldMusic []int16   // played by Hold without msg
	// Dialogs ends the calls of sessions Recover finds still up; nil: not ended (the caller
	// hears silence until it hangs up).
	Dialogs DialogEnder
	Log     *slog.Logger
	Calls   *metrics.Calls  // calls up and ended; nil: not counted
	Blocks  *metrics.Blocks // blocks run; nil: not counted
}

// Engine runs every session of the server.
type Engine struct {
	cfg Config
	d   Deps
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
	wg       sync.WaitGroup // background work: blocks, call ends, recordings being finished
}

// Response is the API answer to a block request.
type Response struct {
	Status string
	Fields map[string]string // extra JSON fields (e.g. txn_ref, session for Dial)
}

func resp(status string) Response { return Response{Status: status} }

// New makes an engine.
func New(cfg Config, d Deps) *Engine {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.PrepareBudget <= 0 {
		cfg.PrepareBudget = 10 * time.Second
	}
	if cfg.KeepEnded <= 0 {
		cfg.KeepEnded = time.Hour
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, d: d, log: log, sessions: map[string]*session{}}
}

// ErrCallLimit is returned by Incoming when the app has as many calls as it may.
var ErrCallLimit = errors.New("ivr: concurrent call limit reached")

// ErrCallEnded is what a Call returns when the call ended during an operation.
var ErrCallEnded = errors.New("call ended")

// Incoming registers a ringing incoming call routed to appID and sends the Answer notification
// to answerURL. It returns the new session's id, or ErrCallLimit, or the journal's error.
func (e *Engine) Incoming(call Call, appID, answerURL, from, to string) (string, error) {
	s := e.newSession(appID)
	s.m.rec.From, s.m.rec.To, s.m.rec.AnswerURL = from, to, answerURL
	if err := s.m.incoming(dialogOf(call)); err != nil {
		return "", err
	}
	if l := nameCall(call, s.id()); l != nil {
		s.log = l // the call's own logger: its lines and the session's carry both ids
	}
	if !e.admit(s) {
		nameCall(call, "")
		return "", ErrCallLimit
	}
	if err := e.begin(s); err != nil { // journaled, or the call is refused
		e.forget(s)
		nameCall(call, "")
		return "", err
	}
	e.d.Calls.Started(metrics.Inbound)
	e.attach(s, call)
	e.flush(s) // queues the Answer notification
	e.armIdle(s)
	return s.id(), nil
}

func (e *Engine) newSession(appID string) *session {
	id := newID("S", 12)
	return &session{log: e.log.With(calllog.Key, id), m: machine{rec: SessionRecord{
		ID:        id,
		AppID:     appID,
		TxnRef:    newID("TX", 10),
		StartedAt: time.Now(),
	}}}
}

// admit registers s unless its app is at the concurrent call limit.
func (e *Engine) admit(s *session) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if lim := e.cfg.MaxCallsPerApp; lim > 0 {
		n := 0
		for _, o := range e.sessions {
			if o.m.rec.AppID == s.m.rec.AppID && o.m.rec.Line != LineDown {
				n++
			}
		}
		if n >= lim {
			return false
		}
	}
	e.sessions[s.id()] = s
	return true
}

func (e *Engine) forget(s *session) {
	e.mu.Lock()
	if e.sessions[s.id()] == s {
		delete(e.sessions, s.id())
	}
	e.mu.Unlock()
}

// attach binds a live call to its session: keys, audio taps, and the end of the call.
func (e *Engine) attach(s *session, call Call) {
	call.OnDTMF(s.keys.press) // before answering: keys pressed early are not lost
	call.SetTap(&s.taps)
	e.mu.Lock()
	s.call = call
	e.mu.Unlock()
	e.wg.Add(1)
	call.AfterEnd(func() {
		defer e.wg.Done()
		e.lineDown(s)
	})
}

// Session returns a copy of a session's record.
func (e *Engine) Session(id string) (SessionRecord, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.sessions[id]
	if !ok {
		return SessionRecord{}, false
	}
	return s.m.rec.clone(), true
}

// Wait blocks until every running block and every recording being finished is done.
func (e *Engine) Wait() { e.wg.Wait() }

// Handle runs one API request for the named block, for an app whose credentials the caller has
// already checked. It applies the order of checks: session, the block's own parameters in the
// order of its table, the block's state; then it prepares msg and starts the block.
func (e *Engine) Handle(ctx context.Context, appID, name string, p Params) Response {
	spec, ok := blocks[name]
	if !ok {
		return resp(StatusInternal)
	}
	if spec.outbound {
		return e.handleOutbound(ctx, appID, spec, p)
	}
	sid := p["session"]
	if sid == "" {
		return resp(Missing("session"))
	}
	force := spec.force != nil && spec.force(p)
	e.mu.Lock()
	s, st := e.lookup(appID, sid, name, force)
	e.mu.Unlock()
	if st != "" {
		return resp(st)
	}
	c := &checker{ctx: ctx, e: e, p: p}
	b := spec.parse(c)
	if c.status != "" {
		return resp(c.status)
	}

	e.mu.Lock()
	if _, st = e.lookup(appID, sid, name, force); st == "" && b.check != nil {
		st = b.check(s)
	}
	if st != "" {
		e.mu.Unlock()
		return resp(st)
	}
	if !force {
		s.preparing = b
	}
	s.idleGen++ // a block arrived: no idle hang-up
	e.mu.Unlock()

	pcm, st := e.prepare(ctx, b.msg)
	e.mu.Lock()
	if s.preparing == b {
		s.preparing = nil
	}
	run := 0
	if st == "" {
		var err error
		run, err = s.m.accept(acceptance{name: b.name, target: b.target, tag: b.tag, end: b.end, silent: b.silent,
			force: force, params: p, extra: b.extra})
		switch {
		case err != nil: // the session moved on while msg was prepared (a forced Hangup, the end)
			if _, st = e.lookup(appID, sid, name, force); st == "" {
				st = StatusSessionNotReady
			}
		default:
			s.running++
			if b.accept != nil {
				b.accept(s)
			}
		}
	}
	e.mu.Unlock()
	if st != "" {
		e.armIdle(s)
		return resp(st)
	}
	e.flush(s) // accepted and journaled before it runs
	e.start(s, b, run, pcm)
	return Response{Status: StatusOK, Fields: b.fields}
}

// prepare synthesises/downloads msg within the request's budget, or returns the failure status.
func (e *Engine) prepare(ctx context.Context, msg string) ([]int16, string) {
	if msg == "" {
		return nil, ""
	}
	pctx, cancel := context.WithTimeout(ctx, e.cfg.PrepareBudget)
	defer cancel()
	pcm, err := e.d.Prompter.Prepare(pctx, msg)
	if err != nil {
		return nil, statusOf(err, StatusMsgCannotConvertText)
	}
	return pcm, ""
}

// lookup finds a session and applies the session checks by its phase. A forced Hangup passes
// any session still live; Unhold passes a held one. Caller holds e.mu.
func (e *Engine) lookup(appID, sid, name string, force bool) (*session, string) {
	s, ok := e.sessions[sid]
	switch {
	case !ok:
		return nil, StatusInvalidSession
	case s.m.rec.AppID != appID:
		return nil, StatusSessionAccessDenied
	}
	rec := &s.m.rec
	switch rec.Phase {
	case PhaseEnding, PhaseSettled, PhaseEnded:
		return nil, StatusSessionEnded
	}
	if force {
		return s, ""
	}
	if p := s.preparing; p != nil {
		if p.end {
			return nil, StatusSessionEnded
		}
		return nil, StatusSessionNotReady
	}
	switch {
	case rec.Phase == PhaseHeld && name == "unhold":
	case rec.Phase == PhaseRunning && rec.Current != nil && rec.Current.End:
		return nil, StatusSessionEnded
	case rec.Phase == PhaseRunning || rec.Phase == PhaseHeld:
		return nil, StatusSessionNotReady
	}
	return s, ""
}

// start runs an accepted block in the background.
func (e *Engine) start(s *session, b *block, run int, pcm []int16) {
	ctx, cancel := context.WithCancel(context.Background())
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		x := &exec{e: e, s: s, ctx: ctx, run: run, name: b.name}
		extra := b.run(x, pcm)
		e.blockDone(s, x, extra)
	}()
}

// blockDone makes a finished block's notification final and the session ready again.
func (e *Engine) blockDone(s *session, x *exec, extra map[string]string) {
	if isDone(s.call) {
		e.lineDown(s) // the call's end comes first: the block's notification says ended
	}
	e.mu.Lock()
	s.running--
	status := x.status(extra)
	err := s.m.done(x.run, extra, x.hungUp)
	idle := s.m.rec.Phase == PhaseIdle
	e.mu.Unlock()
	e.d.Blocks.Done(x.name, status)
	if err != nil {
		s.log.Error("block done", "run", x.run, "err", err)
	}
	e.flush(s)
	if idle {
		e.armIdle(s)
	}
	e.trySettle(s)
}

// lineDown runs once when the call is over, whoever ended it: the session ends, and its
// Monitor recording is finished.
func (e *Engine) lineDown(s *session) {
	e.mu.Lock()
	if s.m.rec.Line == LineDown || !legal(evDown, s.m.rec.Phase, s.m.rec.Line) {
		e.mu.Unlock()
		return
	}
	cause := s.endCause
	switch {
	case cause != "":
	case s.whoEnded() == ByIvrd: // by the SIP layer itself (its shutdown), not for a block
		cause = CauseIvrdHungUp
	default:
		cause = "far end hung up"
	}
	err := s.m.down(cause, time.Now())
	s.idleGen++
	if s.idle != nil {
		s.idle.Stop()
	}
	r := s.recording
	s.recording = nil
	s.finishing = r != nil
	end := s.m.rec.EndedAt
	e.mu.Unlock()
	if err != nil {
		s.log.Error("call end", "err", err)
	}
	s.taps.setMonitor(nil)
	e.flush(s)
	e.callOver(s, false)
	if r != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.finishMonitor(s, r, end)
		}()
	}
	e.trySettle(s)
}

// finishMonitor completes the Monitor recording; its URL goes out when the session settles.
func (e *Engine) finishMonitor(s *session, r Recording, end time.Time) {
	x := &exec{e: e, s: s}
	url, err := x.finishRecording(r, end)
	if err != nil {
		s.log.Error("monitor: finish recording", "err", err)
	}
	e.mu.Lock()
	s.finishing = false
	err = s.m.stored(url)
	e.mu.Unlock()
	if err != nil {
		s.log.Error("monitor: stored", "err", err)
	}
	e.flush(s)
	e.trySettle(s)
}

// trySettle settles the session once its call is over and nothing runs any more.
func (e *Engine) trySettle(s *session) {
	e.mu.Lock()
	rec := &s.m.rec
	if rec.Phase != PhaseEnding || rec.Line != LineDown || s.running > 0 || s.finishing ||
		s.m.awaitingBlocks() || (rec.Monitor != nil && !rec.Monitor.Stored) {
		e.mu.Unlock()
		return
	}
	err := s.m.settle(nil)
	e.mu.Unlock()
	if err != nil {
		s.log.Error("settle", "err", err)
	}
	e.flush(s)
	e.tryClose(s)
}

// tryClose ends a settled session once everything it owed is queued.
func (e *Engine) tryClose(s *session) {
	e.mu.Lock()
	if s.m.rec.Phase != PhaseSettled || len(s.m.rec.Owed) > 0 {
		e.mu.Unlock()
		return
	}
	err := s.m.close()
	e.mu.Unlock()
	if err != nil {
		s.log.Error("close", "err", err)
		return
	}
	e.flush(s)
	time.AfterFunc(e.cfg.KeepEnded, func() { e.forget(s) })
}

// armIdle starts the idle timer of a session waiting for a block: with none in time, the
// session ends and the call is hung up.
func (e *Engine) armIdle(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ph := s.m.rec.Phase; (ph != PhaseIdle && ph != PhaseRinging) || s.preparing != nil {
		return
	}
	s.idleGen++
	gen := s.idleGen
	if s.idle != nil {
		s.idle.Stop()
	}
	s.idle = time.AfterFunc(e.cfg.IdleTimeout, func() { e.idleTimeout(s, gen) })
}

func (e *Engine) idleTimeout(s *session, gen int) {
	e.mu.Lock()
	if ph := s.m.rec.Phase; gen != s.idleGen || (ph != PhaseIdle && ph != PhaseRinging) || s.preparing != nil {
		e.mu.Unlock()
		return
	}
	err := s.m.timeout()
	s.endCause = "idle timeout"
	line, call := s.m.rec.Line, s.call
	e.mu.Unlock()
	if err != nil {
		s.log.Error("idle timeout", "err", err)
		return
	}
	s.log.Info("idle timeout: hanging up")
	e.flush(s)
	endCall(call, line, 480)
}

// endCall ends call from our side: a ringing call is refused with code, any other hung up.
// A refusal that comes too late (an answer got under way) becomes a hang-up.
func endCall(call Call, line Line, code int) {
	if call == nil {
		return
	}
	if line == LineRinging && call.Reject(code) == nil {
		return
	}
	if !isDone(call) {
		_ = call.Hangup()
	}
}

// flush journals the session's record with the timeline entries of the transitions since the
// last write, then queues the notifications that became final, in order, and notes them
// queued. Notifications are queued only once the record that owes them is journaled: after a
// journal failure they wait (retried) rather than go out under delivery ids a crash could give
// to other content. It returns the journal's error.
func (e *Engine) flush(s *session) error {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	rec, ready, err := e.save(s)
	if errors.Is(err, ErrNotOwner) {
		e.drop(s, err)
		return err
	}
	if err != nil {
		s.log.Error("journal", "err", err)
		e.retryLater(s)
		return err
	}
	var ids []int
	failed := false
	for _, o := range ready {
		if err := e.d.Notifier.Notify(e.cfg.Billing.notification(rec, o)); err != nil {
			s.log.Error("notify", "block", o.Notice.Block, "err", err)
			e.retryLater(s) // the rest waits: a session's notifications keep their order
			failed = true
			break
		}
		ids = append(ids, o.ID)
	}
	e.mu.Lock()
	if len(ids) > 0 {
		err = s.m.queued(ids)
	}
	if !failed {
		s.retries = 0
	}
	e.mu.Unlock()
	if err != nil {
		s.log.Error("queued", "err", err)
	}
	return nil
}

// begin journals a new session's first record. Nothing else has happened yet: on failure the
// session is forgotten and the request or call refused.
func (e *Engine) begin(s *session) error {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	_, _, err := e.save(s)
	return err
}

// save writes the session's record with the timeline entries not journaled yet (kept for the
// next attempt if the write fails), and returns the record and the notifications it owes,
// final and not yet queued. The caller holds s.jmu: writes of one session are in order and
// each takes its snapshot inside that order, so the last write is always the newest state.
func (e *Engine) save(s *session) (SessionRecord, []Owed, error) {
	e.mu.Lock()
	news := s.m.takeNews()
	rec := s.m.rec.clone()
	ready := s.m.ready()
	lost := s.lost
	e.mu.Unlock()
	if lost { // another node owns it: nothing more is written or queued
		return rec, nil, nil
	}
	if len(news) == 0 || e.d.Journal == nil {
		return rec, ready, nil
	}
	if err := e.d.Journal.SaveSession(rec, news); err != nil {
		e.mu.Lock()
		s.m.news = append(news, s.m.news...)
		e.mu.Unlock()
		return rec, nil, err
	}
	return rec, ready, nil
}

// retryLater flushes the session again after a failure (a full disk, a locked database),
// backing off from 1 s to maxRetryWait: owed notifications go out soon after the store
// recovers.
func (e *Engine) retryLater(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.retry != nil {
		return
	}
	d := min(time.Second<<min(s.retries, 6), maxRetryWait)
	s.retries++
	s.retry = time.AfterFunc(d, func() {
		e.mu.Lock()
		s.retry = nil
		e.mu.Unlock()
		if e.flush(s) == nil {
			e.tryClose(s)
		}
	})
}

// maxRetryWait bounds the wait between a session's journal retries.
const maxRetryWait = 5 * time.Second

func isDone(c Call) bool {
	if c == nil {
		return false
	}
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}
