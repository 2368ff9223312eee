package ivr

import (
	"context"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

func init() {
	blocks["gather"] = gatherSpec
	blocks["record"] = recordSpec
}

// Gather: plays msg and collects keys until max_digits, '#' or timeout; with no keys it repeats,
// up to attempts times. Keys pressed during msg count (and stop it). Notifies with digits.
var gatherSpec = blockSpec{parse: func(c *checker) *block {
	target := c.notifyURL("notify_url", true)
	msg := c.msg(MaxMsg)
	maxDigits := c.integer("max_digits", 0, 0, 255, StatusInvalidMaxDigits)
	timeout := c.integer("timeout", 15, 1, 3600, StatusInvalidTimeout)
	attempts := c.integer("attempts", 1, 1, 100, StatusInvalidAttempts)
	tag := c.tag()
	return &block{name: "gather", msg: msg, tag: tag, target: target, extra: map[string]string{"digits": ""},
		run: func(x *exec, pcm []int16) map[string]string {
			keys, stop := x.s.keys.listen() // from the start: keys right after the answer count
			defer stop()
			if x.answer() != nil {
				return map[string]string{"digits": ""}
			}
			digits := x.gather(keys, pcm, maxDigits, time.Duration(timeout)*time.Second, attempts)
			return map[string]string{"digits": digits}
		}}
}}

// gather runs Gather's attempts and returns the keys (without '#').
func (x *exec) gather(keys <-chan rune, pcm []int16, maxDigits int, timeout time.Duration, attempts int) string {
	var got []rune
	for a := 0; a < attempts; a++ {
		first, ok := x.playUntilKey(pcm, keys)
		if !ok {
			return string(got)
		}
		timer := time.NewTimer(timeout)
		key := first
		for {
			if key != 0 {
				if key == '#' {
					timer.Stop()
					return string(got)
				}
				got = append(got, key)
				if maxDigits > 0 && len(got) >= maxDigits {
					timer.Stop()
					return string(got)
				}
				timer.Reset(timeout)
			}
			key = 0
			select {
			case key = <-keys:
				continue
			case <-timer.C:
			case <-x.s.call.Done():
				timer.Stop()
				return string(got)
			}
			break
		}
		if len(got) > 0 {
			return string(got)
		}
	}
	return string(got)
}

// playUntilKey plays pcm, stopping at the first key, which it returns (0 if none). ok is false
// when the call ended.
func (x *exec) playUntilKey(pcm []int16, keys <-chan rune) (key rune, ok bool) {
	if len(pcm) == 0 {
		return 0, !isDone(x.s.call)
	}
	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	played := make(chan error, 1)
	go func() { played <- x.s.call.Play(ctx, pcm) }()
	select {
	case key = <-keys:
		cancel()
		<-played
	case <-played:
	}
	return key, !isDone(x.s.call)
}

// beep marks the start of a recording.
var beep = audio.SineWave(1000, 300*time.Millisecond, 8000)

// Record: plays msg and a beep, records the caller until '#', max_duration or hang-up (a partial
// recording is still delivered), stores an MP3 and notifies with record_url.
var recordSpec = blockSpec{parse: func(c *checker) *block {
	target := c.notifyURL("notify_url", true)
	msg := c.msg(MaxMsg)
	maxDur := c.integer("max_duration", defaultRecordMaxSeconds, 1, maxCallSeconds, StatusInvalidMaxDur)
	tag := c.tag()
	channels := c.channels()
	return &block{name: "record", msg: msg, tag: tag, target: target,
		run: func(x *exec, pcm []int16) map[string]string {
			if x.answer() != nil || x.play(pcm) != nil || x.play(beep) != nil {
				return nil
			}
			keys, stop := x.s.keys.listen()
			defer stop()
			if !x.mayRecord() {
				return nil
			}
			id, start := newID("rec-", 10), time.Now()
			r, err := x.e.d.Recorders.Start(RecordingInfo{ID: id, AppID: x.s.m.rec.AppID, SessionID: x.s.id(), Kind: "record", Start: start, Channels: channels, Log: x.s.log})
			if err != nil {
				x.s.log.Error("record: start", "err", err)
				x.failed = true
				return nil
			}
			if !x.recording("record", id, "", "", start) {
				_, _ = r.Finish(start)
				return nil
			}
			x.s.taps.setRecord(r, channels == 2)
			limit := time.NewTimer(time.Duration(maxDur) * time.Second)
		wait:
			for {
				select {
				case k := <-keys:
					if k == '#' {
						break wait
					}
				case <-limit.C:
					break wait
				case <-x.s.call.Done():
					break wait
				case <-x.ctx.Done():
					break wait
				}
			}
			limit.Stop()
			x.s.taps.setRecord(nil, false)
			url, err := x.finishRecording(r, time.Now())
			if err != nil {
				x.s.log.Error("record: finish", "err", err)
				x.failed = true
				return nil
			}
			return map[string]string{"record_url": url}
		}}
}}
