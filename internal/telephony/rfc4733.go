package telephony

import (
	"encoding/binary"
	"errors"
	"time"
)

// RFC 4733 telephone-event payload (the RTP payload of the negotiated telephone-event type):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Every packet of one event carries the event's start RTP timestamp; duration grows; the last
// packet has E set and is usually sent three times. We do not rely on any one packet arriving:
// a press is reported at the first packet seen of it, whatever its duration (diago's own reader
// drops events whose first packet has duration 0, which is how sipp's shipped pcaps start).

// telephoneEvent is one parsed RFC 4733 event block.
type telephoneEvent struct {
	Event    uint8
	End      bool
	Volume   uint8 // 0..63, in -dBm0
	Duration uint16
}

var errShortEvent = errors.New("telephony: telephone-event payload shorter than 4 bytes")

// parseTelephoneEvent parses the first event block of an RTP telephone-event payload. Further
// blocks (rare; RFC 4733 §2.5.1.6 packs several short events) are ignored.
func parseTelephoneEvent(p []byte) (telephoneEvent, error) {
	if len(p) < 4 {
		return telephoneEvent{}, errShortEvent
	}
	return telephoneEvent{
		Event:    p[0],
		End:      p[1]&0x80 != 0,
		Volume:   p[1] & 0x3F,
		Duration: binary.BigEndian.Uint16(p[2:4]),
	}, nil
}

// appendTelephoneEvent appends the wire form of ev to b (used by tests and the fuzz target).
func appendTelephoneEvent(b []byte, ev telephoneEvent) []byte {
	flags := ev.Volume & 0x3F
	if ev.End {
		flags |= 0x80
	}
	return binary.BigEndian.AppendUint16(append(b, ev.Event, flags), ev.Duration)
}

// eventDigit maps the DTMF event codes 0..15 to their keys.
func eventDigit(code uint8) (rune, bool) {
	const keys = "0123456789*#ABCD"
	if int(code) < len(keys) {
		return rune(keys[code]), true
	}
	return 0, false
}

// eventGap is how long an event's stream must be silent before a packet that repeats its
// start timestamp counts as a new press (a sender replaying a recorded event, like sipp playing
// the same pcap twice) and before an older timestamp is no longer taken for a late packet.
// Real senders give each press a new timestamp, so this only matters for replays.
const eventGap = 250 * time.Millisecond

// dtmfDetector turns the telephone-event packets of one call into key presses, reporting each
// press exactly once: repeated end packets, lost start or end packets, packets reordered within
// an event and late packets of an earlier event are all absorbed. It is not safe for
// concurrent use; the media reader owns it.
//
// A press is identified by (SSRC, start timestamp, event). Replays of recorded events reuse
// all three, so a replay is recognised by time (eventGap of quiet after the end) or by a start
// packet (duration 0, no end bit) after the end: the latter keeps working when our reader was
// stalled and reads the two presses in one burst.
type dtmfDetector struct {
	has   bool
	ssrc  uint32
	ts    uint32 // start timestamp of the current event
	event uint8
	ended bool      // an end packet of the current event was seen
	last  time.Time // arrival of the latest packet of the current event
}

// feed takes one telephone-event packet (its SSRC, RTP timestamp and payload) that arrived at
// now and returns the key when the packet starts a new DTMF press.
func (d *dtmfDetector) feed(ssrc, ts uint32, payload []byte, now time.Time) (rune, bool) {
	ev, err := parseTelephoneEvent(payload)
	if err != nil {
		return 0, false
	}
	sameStream := d.has && ssrc == d.ssrc
	recent := d.has && now.Sub(d.last) < eventGap
	start := ev.Duration == 0 && !ev.End
	switch {
	case sameStream && ts == d.ts && ev.Event == d.event:
		if !d.ended || (recent && !start) {
			// Continuation, retransmitted end, reordered start, or the rest of an event
			// after a burst of loss.
			d.last = now
			d.ended = d.ended || ev.End
			return 0, false
		}
		// The same event again after its end: a replay, hence a new press.
	case sameStream && recent && int32(ts-d.ts) < 0 && !start:
		// A late packet of an earlier event.
		return 0, false
	}
	*d = dtmfDetector{has: true, ssrc: ssrc, ts: ts, event: ev.Event, ended: ev.End, last: now}
	return eventDigit(ev.Event)
}
