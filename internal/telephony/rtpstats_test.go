package telephony

import (
	"errors"
	"testing"
	"time"

	"github.com/emiago/diago/media"
	"github.com/pion/rtp"
)

// failRTP refuses every packet, as a socket whose sends fail.
type failRTP struct{}

func (failRTP) WriteRTP(*rtp.Packet) error { return errors.New("sendto: operation not permitted") }

// A pacer tick counts each frame it sends, those more than a tick late, and the frames a
// stalled schedule skips or a failing send loses; frames withheld on hold, or that a mix sends
// instead, are neither.
func TestFrameCounting(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name             string
		behind           time.Duration // how long before now the sender's next frame was due
		held, mixed      bool
		failing          bool
		sent, late, lost uint64
	}{
		{name: "on time", behind: 0, sent: 1},
		{name: "early within half a tick", behind: -2 * time.Millisecond, sent: 1},
		{name: "late within a tick", behind: 4 * time.Millisecond, sent: 1},
		{name: "a tick late", behind: 6 * time.Millisecond, sent: 1, late: 1},
		{name: "three frames behind", behind: 45 * time.Millisecond, sent: 3, late: 2},
		{name: "stalled 300 ms", behind: 300 * time.Millisecond, sent: 1, lost: 15},
		{name: "held", behind: 0, held: true},
		{name: "in a mix", behind: 0, mixed: true},
		{name: "send fails", behind: 0, failing: true, lost: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := benchLeg()
			if c.failing {
				w := media.NewRTPPacketWriter(failRTP{}, media.CodecAudioUlaw)
				w.ClockDisable()
				l.sendW.Store(w)
			}
			l.held.Store(c.held)
			if c.mixed {
				l.member.Store(&member{leg: l})
			}
			s := &sender{leg: l, due: now.Add(-c.behind)}
			tally := newTally(now)
			s.mu.Lock()
			s.service(now, &tally)
			s.mu.Unlock()
			if tally.sent != c.sent || tally.late != c.late || tally.lost != c.lost {
				t.Errorf("sent %d, late %d, lost %d; want %d, %d, %d", tally.sent, tally.late, tally.lost, c.sent, c.late, c.lost)
			}
			sent0, late0, lost0 := RTPFrames()
			tally.add()
			sent1, late1, lost1 := RTPFrames()
			if sent1-sent0 < c.sent || late1-late0 < c.late || lost1-lost0 < c.lost {
				t.Errorf("counters grew by %d, %d, %d; want at least %d, %d, %d", sent1-sent0, late1-late0, lost1-lost0, c.sent, c.late, c.lost)
			}
		})
	}
}
