package ivr

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestPhasesDoc: phases.md shows the transition table the code enforces.
func TestPhasesDoc(t *testing.T) {
	doc, err := os.ReadFile("phases.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), rulesTable()) {
		t.Fatalf("phases.md does not hold the transition table; it should contain:\n%s", rulesTable())
	}
}

var (
	allPhases = []Phase{"", PhaseRinging, PhaseRunning, PhaseHeld, PhaseIdle, PhaseEnding, PhaseSettled, PhaseEnded}
	allLines  = []Line{LineRinging, LineDialing, LineAnswering, LineUp, LineDown}
)

// fixedClock is a clock that moves only when told.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

// fixture is a machine in phase and line whose contents let event succeed wherever the table
// allows it: block 1 runs (current, its notification awaiting), the Monitor recording is
// being finished, nothing is owed that would keep close from ending the session.
func fixture(phase Phase, line Line, event string) *machine {
	clk := &fixedClock{time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	m := &machine{now: clk.now, rec: SessionRecord{ID: "S1", AppID: "A1", TxnRef: "TX1", AnswerURL: "http://app.test/a",
		Phase: phase, Line: line, StartedAt: clk.t}}
	if phase == "" {
		m.rec.Line = ""
		return m
	}
	m.rec.Runs = 1
	m.rec.Current = &Running{Run: 1, Name: "play"}
	m.rec.Owed = []Owed{{Kind: OwedBlock, Run: 1, Notice: Notice{Block: "play", Target: "http://app.test/p"}}}
	switch event {
	case evStored, evPause:
		m.rec.Monitor = &MonitorRecord{RecordingID: "rec-1", StartedAt: clk.t}
	case evResume:
		m.rec.Monitor = &MonitorRecord{RecordingID: "rec-1", StartedAt: clk.t, Pause: &MonitorPause{Since: clk.t, Behavior: PauseSkip}}
	}
	if event == evClose {
		m.rec.Owed, m.rec.Current = nil, nil
	}
	return m
}

// fire runs event on m with arguments that suit the fixture.
func fire(m *machine, event string) error {
	switch event {
	case evIncoming:
		return m.incoming(nil)
	case evDial:
		_, err := m.dial(acceptance{name: "dial", target: "http://app.test/d"})
		return err
	case evAccept:
		_, err := m.accept(acceptance{name: "gather", target: "http://app.test/g"})
		return err
	case evForce:
		_, err := m.accept(acceptance{name: "hangup", force: true, end: true})
		return err
	case evUnhold:
		_, err := m.accept(acceptance{name: "unhold", target: "http://app.test/u"})
		return err
	case evAnswering:
		return m.answering(1)
	case evAnswered:
		return m.answered(nil)
	case evDialed:
		return m.dialed(DialAnswered, nil)
	case evFail:
		return m.fail("488")
	case evTimeout:
		return m.timeout()
	case evRecording:
		return m.recording(1, "monitor", "rec-1", "http://app.test/m", "", m.clock())
	case evPause:
		return m.pause(PauseSkip, m.clock())
	case evResume:
		return m.resume(m.clock())
	case evDone:
		return m.done(1, nil, false)
	case evDown:
		return m.down("far end hung up", m.clock())
	case evStored:
		return m.stored("http://ivrd.test/r.mp3")
	case evSettle:
		return m.settle(nil)
	case evQueued:
		return m.queued(nil)
	case evClose:
		return m.close()
	}
	panic("unknown event " + event)
}

func snapshot(t *testing.T, m *machine) string {
	t.Helper()
	b, err := json.Marshal(m.rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTransitionTable tries every event in every phase and line state: it succeeds exactly
// where the table allows it, and an illegal one is an *IllegalError that changes nothing.
func TestTransitionTable(t *testing.T) {
	legalCount, illegalCount := 0, 0
	for _, r := range rules {
		for _, ph := range allPhases {
			for _, ln := range allLines {
				m := fixture(ph, ln, r.event)
				before := snapshot(t, m)
				err := fire(m, r.event)
				wantLegal := legal(r.event, ph, ln)
				if ph == "" {
					wantLegal = legal(r.event, "", "") // a new session has no line yet
				}
				switch {
				case wantLegal && err != nil:
					t.Errorf("%s in %s/%s: %v, want it legal", r.event, ph, ln, err)
				case !wantLegal && err == nil:
					t.Errorf("%s in %s/%s succeeded, want an illegal transition", r.event, ph, ln)
				case !wantLegal:
					var ie *IllegalError
					if !errors.As(err, &ie) || ie.Event != r.event {
						t.Errorf("%s in %s/%s: error %v, want *IllegalError", r.event, ph, ln, err)
					}
					if after := snapshot(t, m); after != before || len(m.news) != 0 {
						t.Errorf("%s in %s/%s: the illegal transition changed the session", r.event, ph, ln)
					}
					illegalCount++
				default:
					legalCount++
				}
			}
		}
	}
	t.Logf("%d legal and %d illegal transitions checked", legalCount, illegalCount)
}

// TestTransitionContents: transitions the table allows but the session's contents do not.
func TestTransitionContents(t *testing.T) {
	cases := []struct {
		name string
		m    func() *machine
		do   func(m *machine) error
	}{
		{"answering by a block no longer current", func() *machine { return fixture(PhaseRunning, LineRinging, "") },
			func(m *machine) error { return m.answering(7) }},
		{"a second Monitor recording", func() *machine {
			m := fixture(PhaseRunning, LineUp, "")
			m.rec.Monitor = &MonitorRecord{RecordingID: "rec-0"}
			return m
		}, func(m *machine) error {
			return m.recording(1, "monitor", "rec-1", "http://app.test/m", "", time.Time{})
		}},
		{"a Record recording with no block awaiting it", func() *machine { return fixture(PhaseRunning, LineUp, "") },
			func(m *machine) error { return m.recording(9, "record", "rec-1", "", "", time.Time{}) }},
		{"stored without a Monitor", func() *machine { return fixture(PhaseEnding, LineDown, "") },
			func(m *machine) error { return m.stored("u") }},
		{"stored twice", func() *machine {
			m := fixture(PhaseEnding, LineDown, "")
			m.rec.Monitor = &MonitorRecord{RecordingID: "rec-0", Stored: true}
			return m
		}, func(m *machine) error { return m.stored("u") }},
		{"pause without a Monitor recording", func() *machine { return fixture(PhaseIdle, LineUp, "") },
			func(m *machine) error { return m.pause(PauseSilence, m.clock()) }},
		{"pause a paused recording", func() *machine { return fixture(PhaseIdle, LineUp, evResume) },
			func(m *machine) error { return m.pause(PauseSilence, m.clock()) }},
		{"resume a recording not paused", func() *machine { return fixture(PhaseIdle, LineUp, evPause) },
			func(m *machine) error { return m.resume(m.clock()) }},
		{"resume without a Monitor recording", func() *machine { return fixture(PhaseRunning, LineUp, "") },
			func(m *machine) error { return m.resume(m.clock()) }},
		{"queued what is not owed", func() *machine { return fixture(PhaseIdle, LineUp, "") },
			func(m *machine) error { return m.queued([]int{3}) }},
		{"close while notifications are owed", func() *machine { return fixture(PhaseSettled, LineDown, "") },
			func(m *machine) error { return m.close() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.m()
			before := snapshot(t, m)
			err := c.do(m)
			var ie *IllegalError
			if !errors.As(err, &ie) || ie.Why == "" {
				t.Fatalf("got %v, want an illegal transition with a reason", err)
			}
			if snapshot(t, m) != before {
				t.Fatal("the refused transition changed the session")
			}
		})
	}
}

// TestEndedIsTerminal: no transition leaves ended.
func TestEndedIsTerminal(t *testing.T) {
	for _, r := range rules {
		m := fixture(PhaseEnded, LineDown, r.event)
		if err := fire(m, r.event); err == nil || m.rec.Phase != PhaseEnded {
			t.Errorf("%s left ended (err %v)", r.event, err)
		}
	}
}

// queueAll notes every final notification of m queued.
func queueAll(t testing.TB, m *machine) {
	t.Helper()
	var ids []int
	for _, o := range m.ready() {
		ids = append(ids, o.ID)
	}
	if err := m.queued(ids); err != nil {
		t.Fatal(err)
	}
}

// monitored runs a Monitor on m's ringing call up to its notification (queued), recording id.
func monitored(t testing.TB, m *machine, id string) {
	t.Helper()
	run, _ := m.accept(acceptance{name: "monitor", target: "http://app.test/n"})
	_ = m.answering(run)
	_ = m.answered(nil)
	if err := m.recording(run, "monitor", id, "http://app.test/m", "t", m.clock()); err != nil {
		t.Fatal(err)
	}
	_ = m.done(run, nil, false)
	queueAll(t, m)
}

// TestSettle covers what a session owes when its call ends, phase by phase.
func TestSettle(t *testing.T) {
	type owed struct{ block, kind, state, url string }
	cases := []struct {
		name  string
		build func(t testing.TB, m *machine)
		want  []owed
	}{
		{"ringing: the Answer again, ended", func(testing.TB, *machine) {}, []owed{{"answer", OwedEnd, "ended", ""}}},
		{"idle after Play: the Play again, ended", func(t testing.TB, m *machine) {
			run, _ := m.accept(acceptance{name: "play", target: "http://app.test/p"})
			_ = m.answering(run)
			_ = m.answered(nil)
			_ = m.done(run, nil, false)
			queueAll(t, m)
		}, []owed{{"play", OwedEnd, "ended", ""}}},
		{"a crash mid-Record: its notification with what was recorded", func(t testing.TB, m *machine) {
			run, _ := m.accept(acceptance{name: "record", target: "http://app.test/r"})
			_ = m.answering(run)
			_ = m.answered(nil)
			_ = m.recording(run, "record", "rec-r", "", "", m.clock())
		}, []owed{{"record", OwedBlock, "ended", "http://x/rec-r"}}},
		{"idle after Monitor: only the Monitor result", func(t testing.TB, m *machine) {
			monitored(t, m, "rec-m")
		}, []owed{{"monitor", OwedMonitor, "ended", "http://x/rec-m"}}},
		{"held after Play, Monitor running: the Play again, then the Monitor result", func(t testing.TB, m *machine) {
			monitored(t, m, "rec-m")
			run, _ := m.accept(acceptance{name: "play", target: "http://app.test/p"})
			_ = m.done(run, nil, false)
			_, _ = m.accept(acceptance{name: "hold", silent: true})
			queueAll(t, m)
		}, []owed{{"play", OwedEnd, "ended", ""}, {"monitor", OwedMonitor, "ended", "http://x/rec-m"}}},
		{"a Monitor whose recording left nothing: its result without monitor_url", func(t testing.TB, m *machine) {
			monitored(t, m, "rec-empty")
		}, []owed{{"monitor", OwedMonitor, "ended", ""}}},
		{"refused while the Monitor answered: the Monitor, ended", func(t testing.TB, m *machine) {
			run, _ := m.accept(acceptance{name: "monitor", target: "http://app.test/n"})
			_ = m.answering(run)
			_ = m.fail("answer failed")
			_ = m.done(run, nil, false)
		}, []owed{{"monitor", OwedBlock, "ended", ""}}},
	}
	urls := map[string]string{"rec-r": "http://x/rec-r", "rec-m": "http://x/rec-m"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := fixture("", "", "")
			if err := m.incoming(nil); err != nil {
				t.Fatal(err)
			}
			queueAll(t, m) // the Answer went out
			c.build(t, m)
			if m.rec.Line != LineDown {
				if err := m.down("crash", m.clock()); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.settle(urls); err != nil {
				t.Fatal(err)
			}
			var got []owed
			for _, o := range m.ready() {
				url := o.Notice.Extra["monitor_url"] + o.Notice.Extra["record_url"]
				got = append(got, owed{o.Notice.Block, o.Kind, o.CallState, url})
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("owed %v, want %v", got, c.want)
			}
			if m.awaitingBlocks() || len(m.ready()) != len(m.rec.Owed) || m.rec.Phase != PhaseSettled {
				t.Fatalf("not settled: %+v", m.rec)
			}
		})
	}
}
