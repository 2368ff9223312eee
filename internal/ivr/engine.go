// Package ivr is ivrd's call-flow engine: sessions, the API's order of checks, and the blocks
// (Monitor, Play, Hangup, ...). It does no network or disk I/O of its own: calls, prompts,
// recordings, persistence and notifications come in through the interfaces in deps.go, so the
// whole state machine can be tested with in-memory parts.
package ivr

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
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
	Log       *slog.Logger
}

// Engine runs every session of the server.
type Engine struct {
	cfg Config
	d   Deps
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
	wg       sync.WaitGroup // background work: blocks, recordings being finished
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
		log = slog.Default()
	}
	return &Engine{cfg: cfg, d: d, log: log, sessions: map[string]*session{}}
}

// ErrCallLimit is returned by Incoming when the app has as many calls as it may.
var ErrCallLimit = errors.New("ivr: concurrent call limit reached")

// Incoming registers a ringing incoming call routed to appID and sends the Answer notification
// to answerURL. It returns the new session's id, or ErrCallLimit.
func (e *Engine) Incoming(call Call, appID, answerURL, from, to string) (string, error) {
	s := e.newSession(appID, StateRinging)
	s.rec.From, s.rec.To, s.rec.AnswerURL = from, to, answerURL
	n := Notice{Block: "answer", Target: answerURL}
	s.rec.Last = &n
	if !e.admit(s) {
		return "", ErrCallLimit
	}
	if err := e.journal(s.rec); err != nil {
		e.forget(s)
		return "", err
	}
	e.attach(s, call)
	e.notify(s.rec, n, StateRinging)
	e.armIdle(s)
	return s.rec.ID, nil
}

func (e *Engine) newSession(appID, state string) *session {
	return &session{rec: SessionRecord{
		ID:        newID("S", 12),
		AppID:     appID,
		TxnRef:    newID("TX", 10),
		State:     state,
		StartedAt: time.Now(),
	}}
}

// admit registers s unless its app is at the concurrent call limit.
func (e *Engine) admit(s *session) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if lim := e.cfg.MaxCallsPerApp; lim > 0 {
		n := 0
		for _, o := range e.sessions {
			if o.rec.AppID == s.rec.AppID && !o.ended {
				n++
			}
		}
		if n >= lim {
			return false
		}
	}
	e.sessions[s.rec.ID] = s
	return true
}

func (e *Engine) forget(s *session) {
	e.mu.Lock()
	delete(e.sessions, s.rec.ID)
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
		e.callEnded(s)
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
	return s.rec, true
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
	bypass := spec.bypass != nil && spec.bypass(p)
	e.mu.Lock()
	s, st := e.lookup(appID, sid, name, bypass)
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
	if _, st = e.lookup(appID, sid, name, bypass); st == "" && b.check != nil {
		st = b.check(s)
	}
	if st != "" {
		e.mu.Unlock()
		return resp(st)
	}
	s.busy = true
	if b.end {
		s.endAccepted = true
	}
	s.idleGen++ // a block arrived: no idle hang-up
	e.mu.Unlock()

	pcm, st := e.prepare(ctx, b.msg)
	if st != "" {
		e.mu.Lock()
		s.busy = false
		if b.end {
			s.endAccepted = false
		}
		e.mu.Unlock()
		e.armIdle(s)
		return resp(st)
	}
	if b.accept != nil {
		e.mu.Lock()
		b.accept(s)
		e.mu.Unlock()
	}
	e.start(s, b, pcm)
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

// lookup finds a session and applies the session checks. bypass lets a block through a busy
// or held session (forced Hangup; Unhold of a held call). Caller holds e.mu.
func (e *Engine) lookup(appID, sid, name string, bypass bool) (*session, string) {
	s, ok := e.sessions[sid]
	switch {
	case !ok:
		return nil, StatusInvalidSession
	case s.rec.AppID != appID:
		return nil, StatusSessionAccessDenied
	case s.ended:
		return nil, StatusSessionEnded
	case bypass && (name == "hangup" || s.held):
		return s, ""
	case s.endAccepted:
		return nil, StatusSessionEnded
	case s.busy:
		return nil, StatusSessionNotReady
	}
	return s, ""
}

// start runs an accepted block in the background.
func (e *Engine) start(s *session, b *block, pcm []int16) {
	ctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	s.seq++
	seq := s.seq
	s.cancel = cancel
	n := Notice{Block: b.name, Target: b.target, Tag: b.tag}
	s.rec.Pending = &n
	e.mu.Unlock()
	e.save(s)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		x := &exec{e: e, s: s, ctx: ctx}
		extra := b.run(x, pcm)
		e.blockDone(s, seq, b, n, extra)
	}()
}

// blockDone sends a finished block's notification and makes the session ready again.
// A block interrupted by a forced Hangup (seq no longer current) only notifies.
func (e *Engine) blockDone(s *session, seq int, b *block, n Notice, extra map[string]string) {
	n.Extra = extra
	e.mu.Lock()
	ended := s.ended || isDone(s.call) || b.name == "hangup"
	if ended {
		// A silent block (Hold) tells the app nothing: the end is still owed to it, through
		// its last notification sent again (callEnded).
		if !b.silent {
			s.endNotified = true
		}
		s.rec.State = StateEnded
		if s.rec.EndedAt.IsZero() {
			s.rec.EndedAt = time.Now()
		}
	}
	if seq == s.seq {
		s.busy = false
		s.cancel = nil
		s.rec.Pending = nil
		if !b.silent {
			s.rec.Last = &n
		}
	}
	rec := s.rec
	e.mu.Unlock()
	state := StateOngoing
	if ended {
		state = StateEnded
	}
	if !b.silent {
		e.notify(rec, n, state)
	}
	e.save(s)
	if !ended {
		e.armIdle(s)
	}
}

// callEnded runs once when the call is over, whoever ended it.
func (e *Engine) callEnded(s *session) {
	e.mu.Lock()
	s.ended = true
	s.idleGen++
	if s.idle != nil {
		s.idle.Stop()
	}
	s.rec.State = StateEnded
	if s.rec.EndedAt.IsZero() {
		s.rec.EndedAt = time.Now()
	}
	rec, busy, recording, endNotified := s.rec, s.busy, s.recording, s.endNotified
	// Held with nothing but Hold running: Hold sends no notification. A block accepted during
	// the hold (a forced Hangup, Unhold) is pending instead and notifies the end itself.
	onlyHeld := s.held && (rec.Pending == nil || rec.Pending.Block == "hold")
	s.recording = nil
	e.mu.Unlock()
	s.taps.set(true, nil)
	e.save(s)
	if (!busy || onlyHeld) && !endNotified && rec.Last != nil && !(rec.Last.Block == "monitor" && recording != nil) {
		// Nothing that notifies is executing: the app learns the call ended from its last
		// block's notification, sent again with call_state=ended. (After Monitor, the
		// notification carrying monitor_url says it.)
		e.notify(rec, *rec.Last, StateEnded)
	}
	if recording != nil {
		e.finishMonitor(s, recording, rec.EndedAt)
	}
	time.AfterFunc(e.cfg.KeepEnded, func() {
		e.mu.Lock()
		delete(e.sessions, rec.ID)
		e.mu.Unlock()
	})
}

// finishMonitor completes a Monitor recording and hands its URL to the app.
func (e *Engine) finishMonitor(s *session, r Recording, end time.Time) {
	url, err := r.Finish(end)
	if err != nil {
		e.log.Error("monitor: finish recording", "session", s.rec.ID, "err", err)
		return
	}
	e.mu.Lock()
	rec := s.rec
	e.mu.Unlock()
	if rec.Monitor == nil {
		return
	}
	if rec.Monitor.Target != "" {
		if err := e.d.Notifier.Notify(rec.AppID, rec.ID, rec.Monitor.Target, e.cfg.Billing.monitorParams(rec, url)); err != nil {
			e.log.Error("monitor: notify", "session", rec.ID, "err", err)
			return
		}
	}
	e.mu.Lock()
	m := *s.rec.Monitor // records handed out share the pointer: copy, don't mutate
	m.Notified = true
	s.rec.Monitor = &m
	rec = s.rec
	e.mu.Unlock()
	e.save(s)
}

// armIdle starts the idle timer: with no next block in time, the call is hung up.
func (e *Engine) armIdle(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.ended || s.busy {
		return
	}
	s.idleGen++
	gen := s.idleGen
	if s.idle != nil {
		s.idle.Stop()
	}
	s.idle = time.AfterFunc(e.cfg.IdleTimeout, func() {
		e.mu.Lock()
		if gen != s.idleGen || s.ended || s.busy {
			e.mu.Unlock()
			return
		}
		s.endAccepted = true
		ringing := s.rec.State == StateRinging
		e.mu.Unlock()
		e.log.Info("idle timeout: hanging up", "session", s.rec.ID)
		if ringing {
			_ = s.call.Reject(480)
		} else {
			_ = s.call.Hangup()
		}
	})
}

func (e *Engine) notify(rec SessionRecord, n Notice, state string) {
	if n.Target == "" {
		return
	}
	if err := e.d.Notifier.Notify(rec.AppID, rec.ID, n.Target, e.cfg.Billing.noticeParams(rec, n, state)); err != nil {
		e.log.Error("notify", "session", rec.ID, "block", n.Block, "err", err)
	}
}

func (e *Engine) journal(rec SessionRecord) error {
	if e.d.Journal == nil {
		return nil
	}
	return e.d.Journal.SaveSession(rec)
}

// save journals the session's current record. Saves of one session are serialised and each
// takes its snapshot inside that order, so the last write is always the newest state.
func (e *Engine) save(s *session) {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	e.mu.Lock()
	rec := s.rec
	e.mu.Unlock()
	if err := e.journal(rec); err != nil {
		e.log.Error("journal", "session", rec.ID, "err", err)
	}
}

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

// ErrCallEnded is what a Call returns when the call ended during an operation.
var ErrCallEnded = errors.New("call ended")
