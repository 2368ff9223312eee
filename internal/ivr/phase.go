package ivr

import (
	"fmt"
	"slices"
	"strings"
)

// Phase is where a session is in its life, as the app sees it. Exactly one at a time; it is
// persisted with the session and changed only by the session's transitions (machine.go), each
// checked against the table below. phases.md explains them.
type Phase string

const (
	PhaseRinging Phase = "ringing" // an incoming call waits for the app's first block
	PhaseRunning Phase = "running" // a block runs (Dial, Play, a forced Hangup, ...)
	PhaseHeld    Phase = "held"    // Hold runs: only Unhold and a forced Hangup are taken
	PhaseIdle    Phase = "idle"    // a block has notified; the app's next block is awaited
	PhaseEnding  Phase = "ending"  // the end is decided or the call is over; blocks and recordings finish
	PhaseSettled Phase = "settled" // everything the session owes is final and is being queued
	PhaseEnded   Phase = "ended"   // every notification owed has been queued; terminal
)

// Line is the call's own progress, which blocks drive (answering, dialing, hanging up) and
// the far end ends. It is persisted beside the phase: a block runs while the call rings, is
// being answered or is up, so the two are kept apart rather than multiplied into one list.
type Line string

const (
	LineRinging   Line = "ringing"   // an incoming call, not answered
	LineDialing   Line = "dialing"   // a Dial's outbound call, not answered yet
	LineAnswering Line = "answering" // the 200 OK is on its way; the ACK is awaited
	LineUp        Line = "up"        // answered: media flows
	LineDown      Line = "down"      // the call is over, whoever ended it
)

// The transitions, by name. Each is one method of machine and one row of rules.
const (
	evIncoming  = "incoming"  // an incoming call rings: the Answer notification is owed
	evDial      = "dial"      // a Dial request makes a session
	evAccept    = "accept"    // a block request is accepted (Hold makes the session held)
	evForce     = "force"     // a forced Hangup is accepted, whatever runs
	evUnhold    = "unhold"    // Unhold is accepted on a held session
	evAnswering = "answering" // the current block starts answering the call
	evAnswered  = "answered"  // the answer completed (ACK received)
	evDialed    = "dialed"    // the Dial's outbound call was answered, or failed
	evFail      = "fail"      // the call could not be set up (answer refused or dropped)
	evTimeout   = "timeout"   // no block came within the idle timeout
	evRecording = "recording" // a Monitor or Record recording started
	evPause     = "pause"     // the app paused the Monitor recording (monitor/pause)
	evResume    = "resume"    // the app resumed it (monitor/resume)
	evDone      = "done"      // a block finished: its notification is final
	evDown      = "down"      // the call is over (far end, our hang-up, or a crash)
	evStored    = "stored"    // the Monitor recording is finished and stored
	evSettle    = "settle"    // the call is over and nothing runs: everything owed is made final
	evQueued    = "queued"    // owed notifications reached the outbox
	evClose     = "close"     // nothing is owed any more
)

// rule is one row of the transition table: an event is legal in the listed phases and, when
// lines is set, only in those line states.
type rule struct {
	event string
	from  []Phase
	lines []Line // nil: any
	to    string // the resulting phase, as documented
}

var (
	live     = []Phase{PhaseRinging, PhaseRunning, PhaseHeld, PhaseIdle}
	notEnded = []Phase{PhaseRinging, PhaseRunning, PhaseHeld, PhaseIdle, PhaseEnding, PhaseSettled}
	notDown  = []Line{LineRinging, LineDialing, LineAnswering, LineUp}
)

// rules is the transition table. phases.md shows it (a test keeps the two equal).
var rules = []rule{
	{evIncoming, []Phase{""}, nil, "ringing (line ringing)"},
	{evDial, []Phase{""}, nil, "running (line dialing)"},
	{evAccept, []Phase{PhaseRinging, PhaseIdle}, []Line{LineRinging, LineUp}, "running; held for Hold"},
	{evForce, live, notDown, "running"},
	{evUnhold, []Phase{PhaseHeld}, notDown, "running"},
	{evAnswering, []Phase{PhaseRunning, PhaseHeld}, []Line{LineRinging}, "same (line answering)"},
	{evAnswered, []Phase{PhaseRunning, PhaseHeld}, []Line{LineAnswering}, "same (line up)"},
	{evDialed, []Phase{PhaseRunning, PhaseEnding}, []Line{LineDialing}, "same (line up); ending (line down) when not answered"},
	{evFail, []Phase{PhaseRunning, PhaseHeld}, []Line{LineRinging, LineAnswering}, "ending"},
	{evTimeout, []Phase{PhaseRinging, PhaseIdle}, []Line{LineRinging, LineUp}, "ending"},
	{evRecording, []Phase{PhaseRunning}, []Line{LineUp}, "same"},
	{evPause, []Phase{PhaseRunning, PhaseHeld, PhaseIdle}, []Line{LineUp}, "same"},
	{evResume, []Phase{PhaseRunning, PhaseHeld, PhaseIdle}, []Line{LineUp}, "same"},
	{evDone, []Phase{PhaseRunning, PhaseHeld, PhaseIdle, PhaseEnding}, nil, "idle; ending if the block hung up or the call is over; same for a block no longer current"},
	{evDown, notEnded[:5], notDown, "ending (line down)"},
	{evStored, []Phase{PhaseEnding}, []Line{LineDown}, "same"},
	{evSettle, []Phase{PhaseEnding}, []Line{LineDown}, "settled"},
	{evQueued, notEnded, nil, "same"},
	{evClose, []Phase{PhaseSettled}, []Line{LineDown}, "ended"},
}

// IllegalError is a transition attempted where the table does not allow it.
type IllegalError struct {
	Event string
	Phase Phase
	Line  Line
	Why   string // set when the table allows it but the session's contents do not
}

func (e *IllegalError) Error() string {
	s := fmt.Sprintf("ivr: illegal transition %q in phase %q, line %q", e.Event, e.Phase, e.Line)
	if e.Why != "" {
		s += ": " + e.Why
	}
	return s
}

// legal reports whether event may happen in phase with the line in state line.
func legal(event string, phase Phase, line Line) bool {
	for _, r := range rules {
		if r.event == event {
			return slices.Contains(r.from, phase) && (r.lines == nil || slices.Contains(r.lines, line))
		}
	}
	return false
}

// rulesTable renders rules as the markdown table of phases.md.
func rulesTable() string {
	var b strings.Builder
	b.WriteString("| event | legal in phases | with the line | leads to |\n|---|---|---|---|\n")
	for _, r := range rules {
		from := make([]string, len(r.from))
		for i, p := range r.from {
			from[i] = string(p)
			if p == "" {
				from[i] = "(new session)"
			}
		}
		lines := "any"
		if r.lines != nil {
			ls := make([]string, len(r.lines))
			for i, l := range r.lines {
				ls[i] = string(l)
			}
			lines = strings.Join(ls, ", ")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.event, strings.Join(from, ", "), lines, r.to)
	}
	return b.String()
}
