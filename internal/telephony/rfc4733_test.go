package telephony

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// pkt is one telephone-event packet fed to the detector, dt after the previous one.
type pkt struct {
	dt       time.Duration
	ssrc     uint32
	ts       uint32
	event    uint8
	end      bool
	duration uint16
}

// press returns the packets a well-behaved sender emits for one key: a duration-0 start,
// growing continuations every 20 ms, then three end packets.
func press(ssrc, ts uint32, event uint8, gap time.Duration) []pkt {
	ps := []pkt{{dt: gap, ssrc: ssrc, ts: ts, event: event}}
	for d := uint16(320); d <= 1920; d += 320 {
		ps = append(ps, pkt{dt: 20 * time.Millisecond, ssrc: ssrc, ts: ts, event: event, duration: d})
	}
	for range 3 {
		ps = append(ps, pkt{dt: time.Millisecond, ssrc: ssrc, ts: ts, event: event, end: true, duration: 2240})
	}
	return ps
}

func concat(groups ...[]pkt) []pkt {
	var all []pkt
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

func runDetector(ps []pkt) string {
	var d dtmfDetector
	now := time.Unix(1000, 0)
	var got []rune
	for _, p := range ps {
		now = now.Add(p.dt)
		payload := appendTelephoneEvent(nil, telephoneEvent{Event: p.event, End: p.end, Volume: 10, Duration: p.duration})
		if k, ok := d.feed(p.ssrc, p.ts, payload, now); ok {
			got = append(got, k)
		}
	}
	return string(got)
}

func TestDTMFDetector(t *testing.T) {
	const s1, s2 = 0x0e05384e, 0x1234
	normal := press(s1, 13280, 1, 0)
	tests := []struct {
		name string
		pkts []pkt
		want string
	}{
		{"one press, duration 0 start, triple end", normal, "1"},
		{"two presses, new timestamps", concat(press(s1, 1000, 1, 0), press(s1, 3000, 2, 200*time.Millisecond)), "12"},
		{"all keys", concat(
			press(s1, 1000, 10, 0), press(s1, 2000, 11, 300*time.Millisecond),
			press(s1, 3000, 12, 300*time.Millisecond), press(s1, 4000, 15, 300*time.Millisecond),
			press(s1, 5000, 0, 300*time.Millisecond), press(s1, 6000, 9, 300*time.Millisecond)), "*#AD09"},
		{"start packet lost", normal[1:], "1"},
		{"only end packets arrive", normal[len(normal)-3:], "1"},
		{"end packets lost, next press has a new timestamp", concat(normal[:4], press(s1, 13280+800, 1, 30*time.Millisecond)), "11"},
		{"end lost, new key at once", concat(normal[:3], press(s1, 20000, 7, 20*time.Millisecond)), "17"},
		{"start arrives after a continuation", concat([]pkt{normal[1], normal[0]}, normal[2:]), "1"},
		{"late end of the previous press after the next started", concat(
			press(s1, 1000, 4, 0)[:8], press(s1, 2000, 6, 20*time.Millisecond)[:3],
			[]pkt{{dt: time.Millisecond, ssrc: s1, ts: 1000, event: 4, end: true, duration: 1600}},
			press(s1, 2000, 6, 0)[3:]), "46"},
		{"end retransmitted late but within the gap", concat(normal,
			[]pkt{{dt: 100 * time.Millisecond, ssrc: s1, ts: 13280, event: 1, end: true, duration: 2240}}), "1"},
		{"same press replayed after a pause (sipp pcap twice)", concat(normal, press(s1, 13280, 1, 360*time.Millisecond)), "11"},
		{"replay of a lower timestamp after a pause (pcap 5 then 1)", concat(
			press(s1, 43200, 5, 0), press(s1, 13280, 1, 360*time.Millisecond)), "51"},
		{"replay read in one burst (stalled reader)", concat(normal, press(s1, 13280, 1, time.Millisecond)), "11"},
		{"lower timestamp read in one burst", concat(press(s1, 43200, 5, 0), press(s1, 13280, 1, time.Millisecond)), "51"},
		{"limitation: a replay read in one burst with its start packet lost merges", concat(normal, press(s1, 13280, 1, time.Millisecond)[1:]), "1"},
		{"long loss inside a press does not split it", concat(normal[:2],
			[]pkt{{dt: 600 * time.Millisecond, ssrc: s1, ts: 13280, event: 1, duration: 6000}}, normal[len(normal)-3:]), "1"},
		{"new SSRC is a new stream", concat(press(s1, 500, 3, 0), press(s2, 500, 3, 20*time.Millisecond)), "33"},
		{"same timestamp, different key", concat(normal[:3], []pkt{{dt: 20 * time.Millisecond, ssrc: s1, ts: 13280, event: 2, duration: 320}}), "12"},
		{"non-DTMF event (flash) is not a key", press(s1, 100, 16, 0), ""},
		{"flash between keys", concat(press(s1, 100, 1, 0), press(s1, 900, 16, 300*time.Millisecond), press(s1, 1700, 2, 300*time.Millisecond)), "12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runDetector(tt.pkts); got != tt.want {
				t.Errorf("keys %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTelephoneEvent(t *testing.T) {
	tests := []struct {
		in      []byte
		want    telephoneEvent
		wantErr bool
	}{
		{[]byte{0x01, 0x0a, 0x00, 0x00}, telephoneEvent{Event: 1, Volume: 10}, false},
		{[]byte{0x0b, 0x8a, 0x08, 0xc0}, telephoneEvent{Event: 11, End: true, Volume: 10, Duration: 2240}, false},
		{[]byte{0x05, 0xff, 0xff, 0xff, 0x09, 0x00, 0x00, 0x00}, telephoneEvent{Event: 5, End: true, Volume: 63, Duration: 65535}, false},
		{[]byte{0x01, 0x0a, 0x00}, telephoneEvent{}, true},
		{nil, telephoneEvent{}, true},
	}
	for _, tt := range tests {
		got, err := parseTelephoneEvent(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parse(% x) = %+v, %v; want %+v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzTelephoneEvent feeds arbitrary packet sequences (each: 4 bytes SSRC/timestamp selector
// and dt, then a payload) to the parser and the detector.
func FuzzTelephoneEvent(f *testing.F) {
	seed := func(ps []pkt) []byte {
		var b []byte
		for _, p := range ps {
			b = append(b, byte(p.ssrc&1), byte(p.ts>>8), byte(p.ts), byte(p.dt/time.Millisecond))
			b = appendTelephoneEvent(b, telephoneEvent{Event: p.event, End: p.end, Duration: p.duration})
		}
		return b
	}
	f.Add(seed(press(0, 0x1000, 1, 0)))
	f.Add(seed(concat(press(1, 0x2000, 5, 0), press(1, 0x1000, 1, 300*time.Millisecond))))
	f.Add([]byte{0, 0, 0, 0, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d dtmfDetector
		now := time.Unix(0, 0)
		packets, keys := 0, 0
		for len(data) >= 8 {
			sel, rec := data[:4], data[4:8]
			data = data[8:]
			ev, err := parseTelephoneEvent(rec)
			if err != nil {
				t.Fatalf("parse of 4 bytes failed: %v", err)
			}
			if back := appendTelephoneEvent(nil, ev); !bytes.Equal(back, rec) && rec[1]&0x40 == 0 {
				t.Fatalf("round trip % x -> %+v -> % x", rec, ev, back)
			}
			now = now.Add(time.Duration(sel[3]) * time.Millisecond)
			ts := uint32(binary.BigEndian.Uint16(sel[1:3]))
			packets++
			k, ok := d.feed(uint32(sel[0]&1), ts, rec, now)
			if ok {
				keys++
				if _, valid := eventDigit(rec[0]); !valid || k == 0 {
					t.Fatalf("key %q from event %d", k, rec[0])
				}
				// The very same packet again at once is never a new press.
				if _, again := d.feed(uint32(sel[0]&1), ts, rec, now); again {
					t.Fatalf("duplicate packet reported twice")
				}
			}
		}
		if keys > packets {
			t.Fatalf("%d keys from %d packets", keys, packets)
		}
		_, _ = parseTelephoneEvent(data)
	})
}
