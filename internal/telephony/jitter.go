package telephony

import (
	"sync"

	"github.com/ivrd/ivrd/internal/audio"
)

const (
	// jitterCap bounds a leg's inbound audio waiting for the mix (and so the delay it adds);
	// the oldest samples are dropped beyond it.
	jitterCap = 6 * audio.FrameSamples // 120 ms
	// jitterPrefill is what must be buffered before playout starts (again, after an underrun):
	// the jitter the mix absorbs without a gap.
	jitterPrefill = 2 * audio.FrameSamples // 40 ms
)

// jitterBuf carries one leg's inbound audio from its media reader (push, packets of any size
// at the sender's pace) to a mixer (pull, 20 ms frames at the mixer's pace). It is a bounded
// ring: latency stays below jitterCap whatever the clocks do. Safe for one pusher and one
// puller at a time.
type jitterBuf struct {
	mu       sync.Mutex
	ring     [jitterCap]int16
	start, n int  // first sample and count
	playing  bool // false while prefilling
	dropped  int  // samples dropped on overflow, for tests and logs
}

// push appends pcm, dropping the oldest samples beyond jitterCap.
func (j *jitterBuf) push(pcm []int16) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(pcm) > jitterCap {
		j.dropped += len(pcm) - jitterCap
		pcm = pcm[len(pcm)-jitterCap:]
	}
	if over := j.n + len(pcm) - jitterCap; over > 0 {
		j.start = (j.start + over) % jitterCap
		j.n -= over
		j.dropped += over
	}
	end := (j.start + j.n) % jitterCap
	k := copy(j.ring[end:], pcm)
	copy(j.ring[:], pcm[k:])
	j.n += len(pcm)
}

// pull fills frame with the next samples: silence while prefilling, the remainder padded with
// silence on an underrun (which restarts the prefill). It reports whether frame holds any
// audio from the buffer.
func (j *jitterBuf) pull(frame []int16) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.playing {
		if j.n < jitterPrefill {
			clear(frame)
			return false
		}
		j.playing = true
	}
	k := min(len(frame), j.n)
	c := copy(frame[:k], j.ring[j.start:min(j.start+k, jitterCap)])
	copy(frame[c:k], j.ring[:k-c])
	clear(frame[k:])
	j.start = (j.start + k) % jitterCap
	j.n -= k
	if k < len(frame) {
		j.playing = false
	}
	return k > 0
}
