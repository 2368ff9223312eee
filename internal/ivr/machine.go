package ivr

import (
	"maps"
	"slices"
	"strconv"
	"time"
)

// machine is a session's state machine: a record, changed only by the transitions below,
// each checked against the table in phase.go before it changes anything. It does no I/O: the
// engine journals the record after each transition (with the timeline entries it produced)
// before acting on it, and queues the notifications it made final (ready).
//
// Owed notifications: every block the app sends owes its notification from the moment it is
// accepted (awaiting its result); the Monitor owes its result from the moment its recording
// starts; an incoming call owes its Answer at once. An item becomes final (delivery number,
// call_state) when its result is known, and leaves Owed once it is queued. settle makes
// everything still awaiting final when the call is over, adds the end notification the app
// would otherwise miss, and closes the list: the live end, a failed Dial, a call that could
// not be answered and crash recovery all go through it.
type machine struct {
	rec  SessionRecord
	news []Entry          // timeline entries not journaled yet
	now  func() time.Time // default time.Now
}

func (m *machine) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

func (m *machine) enter(event string) error {
	if !legal(event, m.rec.Phase, m.rec.Line) {
		return &IllegalError{Event: event, Phase: m.rec.Phase, Line: m.rec.Line}
	}
	return nil
}

func (m *machine) refuse(event, why string) error {
	return &IllegalError{Event: event, Phase: m.rec.Phase, Line: m.rec.Line, Why: why}
}

// note adds a timeline entry describing the session as it is now.
func (m *machine) note(e Entry) {
	m.rec.Steps++
	e.Step = m.rec.Steps
	e.At = m.clock()
	e.Phase, e.Line = m.rec.Phase, m.rec.Line
	m.news = append(m.news, e)
}

// acceptance is a block request the engine has checked and prepared.
type acceptance struct {
	name, target, tag string
	end               bool              // an End block: requests meanwhile get error_session_ended
	silent            bool              // sends no notification (Hold)
	force             bool              // a forced Hangup
	params            Params            // for the timeline
	extra             map[string]string // fields its notification carries whatever happens
}

// incoming: a new incoming call rings; its Answer notification is owed (and final) at once.
func (m *machine) incoming(dialog []byte) error {
	if err := m.enter(evIncoming); err != nil {
		return err
	}
	m.rec.Phase, m.rec.Line, m.rec.Dialog = PhaseRinging, LineRinging, dialog
	m.note(Entry{Event: evIncoming})
	m.owe(Owed{Kind: OwedAnswer, Notice: Notice{Block: "answer", Target: m.rec.AnswerURL}}, StateRinging)
	return nil
}

// dial: a Dial request makes a new session whose first block places the call.
func (m *machine) dial(a acceptance) (int, error) {
	if err := m.enter(evDial); err != nil {
		return 0, err
	}
	m.rec.Phase, m.rec.Line = PhaseRunning, LineDialing
	return m.run(evDial, a), nil
}

// accept: a block request is accepted. A forced Hangup is taken whatever runs (that block
// still finishes and notifies); Unhold only on a held session; anything else only when the
// session waits for a block.
func (m *machine) accept(a acceptance) (int, error) {
	ev := evAccept
	switch {
	case a.force:
		ev = evForce
	case a.name == "unhold":
		ev = evUnhold
	}
	if err := m.enter(ev); err != nil {
		return 0, err
	}
	m.rec.Phase = PhaseRunning
	if a.name == "hold" {
		m.rec.Phase = PhaseHeld
	}
	return m.run(ev, a), nil
}

func (m *machine) run(ev string, a acceptance) int {
	m.rec.Runs++
	run := m.rec.Runs
	m.rec.Current = &Running{Run: run, Name: a.name, End: a.end}
	m.note(Entry{Event: ev, Run: run, Block: a.name, Params: timelineParams(a.params)})
	if !a.silent {
		m.rec.Owed = append(m.rec.Owed, Owed{Kind: OwedBlock, Run: run,
			Notice: Notice{Block: a.name, Target: a.target, Tag: a.tag, Extra: maps.Clone(a.extra)}})
	}
	return run
}

// answering: the current block starts answering the ringing call. Only the current block may:
// a block a forced Hangup has overtaken must not answer a call being refused.
func (m *machine) answering(run int) error {
	if err := m.enter(evAnswering); err != nil {
		return err
	}
	if m.rec.Current == nil || m.rec.Current.Run != run {
		return m.refuse(evAnswering, "only the current block answers")
	}
	m.rec.Line = LineAnswering
	m.note(Entry{Event: evAnswering, Run: run})
	return nil
}

// answered: the answer completed.
func (m *machine) answered(dialog []byte) error {
	if err := m.enter(evAnswered); err != nil {
		return err
	}
	m.rec.Line, m.rec.AnsweredAt = LineUp, m.clock()
	if dialog != nil {
		m.rec.Dialog = dialog
	}
	m.note(Entry{Event: evAnswered})
	return nil
}

// dialed: the Dial's outbound call was answered, or failed with outcome.
func (m *machine) dialed(outcome string, dialog []byte) error {
	if err := m.enter(evDialed); err != nil {
		return err
	}
	if outcome == DialAnswered {
		m.rec.Line = LineUp
		if m.rec.EndedAt.IsZero() { // not when the app had already ended the session
			m.rec.AnsweredAt = m.clock()
		}
		if dialog != nil {
			m.rec.Dialog = dialog
		}
	} else {
		m.rec.Phase, m.rec.Line = PhaseEnding, LineDown
		m.ended("dial " + outcome)
	}
	m.note(Entry{Event: evDialed, Cause: outcome})
	return nil
}

// fail: the call could not be set up (the answer was refused or the call dropped during it).
// The session ends: the blocks running notify call_state=ended.
func (m *machine) fail(cause string) error {
	if err := m.enter(evFail); err != nil {
		return err
	}
	m.rec.Phase = PhaseEnding
	if m.rec.Cause == "" {
		m.rec.Cause = cause
	}
	m.note(Entry{Event: evFail, Cause: cause})
	return nil
}

// timeout: no block came in time; the engine hangs up.
func (m *machine) timeout() error {
	if err := m.enter(evTimeout); err != nil {
		return err
	}
	m.rec.Phase = PhaseEnding
	if m.rec.Cause == "" {
		m.rec.Cause = "idle timeout"
	}
	m.note(Entry{Event: evTimeout, Cause: "idle timeout"})
	return nil
}

// recording: the current block started a recording on the answered call. A Monitor's owes
// its result from now on; a Record block's is noted on the block's notification, so that a
// crash still delivers its record_url.
func (m *machine) recording(run int, kind, id, target, tag string, start time.Time) error {
	if err := m.enter(evRecording); err != nil {
		return err
	}
	if m.rec.Current == nil || m.rec.Current.Run != run {
		return m.refuse(evRecording, "only the current block records")
	}
	switch kind {
	case "monitor":
		if m.rec.Monitor != nil {
			return m.refuse(evRecording, "a Monitor recording exists")
		}
		m.rec.Monitor = &MonitorRecord{RecordingID: id, StartedAt: start}
		m.rec.Owed = append(m.rec.Owed, Owed{Kind: OwedMonitor, Notice: Notice{Block: "monitor", Target: target, Tag: tag}, Recording: id})
	default:
		i := m.awaiting(run)
		if i < 0 {
			return m.refuse(evRecording, "no block awaiting a recording")
		}
		m.rec.Owed[i].Recording = id
	}
	m.note(Entry{Event: evRecording, Run: run, Block: kind, Result: map[string]string{"recording": id}})
	return nil
}

// pause: the app pauses the Monitor recording at at; the paused part is silence in the file,
// or left out of it (behavior PauseSkip). Pausing a paused recording is refused: the engine
// answers it as done without a transition.
func (m *machine) pause(behavior string, at time.Time) error {
	if err := m.enter(evPause); err != nil {
		return err
	}
	mon := m.rec.Monitor
	switch {
	case mon == nil || mon.Stored:
		return m.refuse(evPause, "no Monitor recording")
	case mon.Pause != nil:
		return m.refuse(evPause, "already paused")
	}
	x := *mon
	x.Pause = &MonitorPause{Since: at, Behavior: behavior}
	m.rec.Monitor = &x
	m.note(Entry{Event: evPause, Block: "monitor", Params: map[string]string{"pause_behavior": behavior}})
	return nil
}

// resume: the app resumes the paused Monitor recording at at. A pause with skip adds what it
// left out to Skipped: the call lasted that much longer than its recording.
func (m *machine) resume(at time.Time) error {
	if err := m.enter(evResume); err != nil {
		return err
	}
	mon := m.rec.Monitor
	if mon == nil || mon.Pause == nil {
		return m.refuse(evResume, "not paused")
	}
	x := *mon
	paused := max(at.Sub(x.Pause.Since), 0)
	if x.Pause.Behavior == PauseSkip {
		x.Skipped += paused
	}
	x.Pause = nil
	m.rec.Monitor = &x
	m.note(Entry{Event: evResume, Block: "monitor", Result: map[string]string{"paused_ms": strconv.FormatInt(paused.Milliseconds(), 10)}})
	return nil
}

// done: block run finished with these notification fields. hungUp says it ended the call.
// Its notification becomes final: call_state=ended once the end is decided, the call is over
// or a forced Hangup has overtaken the block; ongoing otherwise. The session waits for the next block unless the call is ending.
func (m *machine) done(run int, extra map[string]string, hungUp bool) error {
	if err := m.enter(evDone); err != nil {
		return err
	}
	cur := m.rec.Current
	i := m.awaiting(run)
	block := ""
	switch {
	case i >= 0:
		block = m.rec.Owed[i].Notice.Block
	case cur != nil && cur.Run == run:
		block = cur.Name
	}
	hungUp = hungUp || block == "hangup"                              // a Hangup always ends the call
	overtaken := cur != nil && cur.Run != run && cur.Name == "hangup" // by a forced Hangup
	state := StateOngoing
	if m.rec.Phase == PhaseEnding || m.rec.Line == LineDown || hungUp || overtaken {
		state = StateEnded
	}
	if cur != nil && cur.Run == run {
		m.rec.Current = nil
		switch {
		case m.rec.Phase == PhaseEnding:
		case state == StateEnded:
			m.rec.Phase = PhaseEnding
			if m.rec.Cause == "" {
				m.rec.Cause = "hangup"
			}
		default:
			m.rec.Phase = PhaseIdle
		}
	}
	if i >= 0 {
		o := &m.rec.Owed[i]
		x := maps.Clone(o.Notice.Extra)
		if x == nil && len(extra) > 0 {
			x = map[string]string{}
		}
		maps.Copy(x, extra)
		o.Notice.Extra = x
	}
	m.note(Entry{Event: evDone, Run: run, Block: block, Result: maps.Clone(extra), CallState: state})
	if i >= 0 {
		m.finalize(i, state)
	}
	return nil
}

// down: the call is over. Everything still running notifies call_state=ended.
func (m *machine) down(cause string, at time.Time) error {
	if err := m.enter(evDown); err != nil {
		return err
	}
	m.rec.Phase, m.rec.Line = PhaseEnding, LineDown
	if m.rec.EndedAt.IsZero() {
		m.rec.EndedAt = at
	}
	if m.rec.Cause == "" {
		m.rec.Cause = cause
	}
	m.note(Entry{Event: evDown, Cause: cause})
	return nil
}

// stored: the Monitor recording is finished and stored at url ("" when nothing usable was).
func (m *machine) stored(url string) error {
	if err := m.enter(evStored); err != nil {
		return err
	}
	if m.rec.Monitor == nil || m.rec.Monitor.Stored {
		return m.refuse(evStored, "no Monitor recording being finished")
	}
	mon := *m.rec.Monitor
	mon.Stored, mon.URL = true, url
	m.rec.Monitor = &mon
	m.note(Entry{Event: evStored, Block: "monitor", Result: map[string]string{"monitor_url": url}})
	return nil
}

// settle makes everything the session owes final, once the call is over and nothing runs
// (or after a crash, when nothing will run again). urls are recovered recordings by id.
//
//   - A block still awaiting its result (a crash cut it) notifies call_state=ended, with the
//     URL of its recording (Record) when one was recovered.
//   - If the app has not been told the call ended (its last notification said ringing or
//     ongoing: idle, Hold, or the call never got a block), that notification goes again with
//     call_state=ended; unless it was the Monitor's, whose result says it.
//   - The Monitor result goes last, with monitor_url when something was recorded.
func (m *machine) settle(urls map[string]string) error {
	if err := m.enter(evSettle); err != nil {
		return err
	}
	m.rec.Phase, m.rec.Current = PhaseSettled, nil
	m.note(Entry{Event: evSettle, Cause: m.rec.Cause})
	var runs []int
	for _, o := range m.rec.Owed {
		if o.Kind == OwedBlock && !o.final() {
			runs = append(runs, o.Run)
		}
	}
	slices.Sort(runs)
	for _, run := range runs {
		i := m.awaiting(run)
		o := &m.rec.Owed[i]
		if u := urls[o.Recording]; o.Recording != "" && u != "" {
			x := maps.Clone(o.Notice.Extra)
			if x == nil {
				x = map[string]string{}
			}
			x[urlParam(o.Notice.Block)] = u
			o.Notice.Extra = x
		}
		m.finalize(i, StateEnded)
	}
	mon := slices.IndexFunc(m.rec.Owed, func(o Owed) bool { return o.Kind == OwedMonitor && !o.final() })
	if l := m.rec.Last; l != nil && l.CallState != StateEnded && !(l.Notice.Block == "monitor" && mon >= 0) {
		m.owe(Owed{Kind: OwedEnd, Run: l.Run, Notice: l.Notice}, StateEnded)
	}
	if mon = slices.IndexFunc(m.rec.Owed, func(o Owed) bool { return o.Kind == OwedMonitor && !o.final() }); mon >= 0 {
		url := ""
		if r := m.rec.Monitor; r != nil && r.Stored {
			url = r.URL
		} else if r != nil {
			url = urls[r.RecordingID]
		}
		if url != "" {
			o := &m.rec.Owed[mon]
			o.Notice.Extra = map[string]string{"monitor_url": url}
		}
		m.finalize(mon, StateEnded)
	}
	return nil
}

// queued: these owed notifications are in the outbox.
func (m *machine) queued(ids []int) error {
	if err := m.enter(evQueued); err != nil {
		return err
	}
	for _, id := range ids {
		i := slices.IndexFunc(m.rec.Owed, func(o Owed) bool { return o.ID == id })
		if i < 0 {
			return m.refuse(evQueued, "notification not owed")
		}
		m.rec.Owed = slices.Delete(m.rec.Owed, i, i+1)
		m.note(Entry{Event: evQueued, Delivery: DeliveryID(m.rec.ID, id)})
	}
	return nil
}

// close: the settled session owes nothing any more; it is over.
func (m *machine) close() error {
	if err := m.enter(evClose); err != nil {
		return err
	}
	if len(m.rec.Owed) > 0 {
		return m.refuse(evClose, "notifications still owed")
	}
	m.rec.Phase = PhaseEnded
	m.note(Entry{Event: evClose})
	return nil
}

// owe adds a notification whose content is final.
func (m *machine) owe(o Owed, state string) {
	m.rec.Owed = append(m.rec.Owed, o)
	m.finalize(len(m.rec.Owed)-1, state)
}

// finalize gives owed item i its call_state and delivery number. An item with nowhere to go
// (no notify_url) is dropped, but still counts as what the app was last told.
func (m *machine) finalize(i int, state string) {
	o := &m.rec.Owed[i]
	o.CallState = state
	if state == StateEnded && m.rec.EndedAt.IsZero() {
		m.rec.EndedAt = m.clock()
	}
	e := Entry{Event: stepOwe, Run: o.Run, Block: o.Notice.Block, CallState: state, Target: o.Notice.Target}
	if o.Notice.Target != "" {
		for _, x := range m.rec.Owed { // never reuse a number, even from a damaged record
			m.rec.NextID = max(m.rec.NextID, x.ID)
		}
		m.rec.NextID++
		o.ID = m.rec.NextID
		e.Delivery = DeliveryID(m.rec.ID, o.ID)
	}
	if o.Kind != OwedMonitor && (m.rec.Last == nil || o.Run >= m.rec.Last.Run) {
		last := o.clone()
		m.rec.Last = &last
	}
	m.note(e)
	if o.Notice.Target == "" {
		m.rec.Owed = slices.Delete(m.rec.Owed, i, i+1)
	}
}

// awaiting returns the index of run's notification while it awaits its result, or -1.
func (m *machine) awaiting(run int) int {
	return slices.IndexFunc(m.rec.Owed, func(o Owed) bool { return o.Kind == OwedBlock && o.Run == run && !o.final() })
}

// awaitingBlocks reports whether a block's notification still awaits its result.
func (m *machine) awaitingBlocks() bool {
	return slices.ContainsFunc(m.rec.Owed, func(o Owed) bool { return o.Kind == OwedBlock && !o.final() })
}

// ready returns the final notifications not yet queued, in delivery order.
func (m *machine) ready() []Owed {
	var out []Owed
	for _, o := range m.rec.Owed {
		if o.final() {
			out = append(out, o.clone())
		}
	}
	slices.SortFunc(out, func(a, b Owed) int { return a.ID - b.ID })
	return out
}

// takeNews returns the timeline entries not journaled yet and forgets them.
func (m *machine) takeNews() []Entry {
	n := m.news
	m.news = nil
	return n
}

// ended notes that the call is over now, for a cause.
func (m *machine) ended(cause string) {
	if m.rec.EndedAt.IsZero() {
		m.rec.EndedAt = m.clock()
	}
	if m.rec.Cause == "" {
		m.rec.Cause = cause
	}
}

// urlParam is the notification field carrying a block's recording.
func urlParam(block string) string {
	if block == "monitor" {
		return "monitor_url"
	}
	return block + "_url"
}
