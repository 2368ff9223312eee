// Package audio holds ivrd's audio primitives: 8 kHz mono 16-bit PCM, G.711, mixing, resampling,
// decoders and the MP3 encoder. Everything inside ivrd that carries sound carries it as PCM at Rate.
package audio

import "time"

// Rate is the sample rate of every PCM buffer inside ivrd (telephony narrowband).
const Rate = 8000

// FrameSamples is one 20 ms RTP frame at Rate.
const FrameSamples = Rate / 50

// Tap receives a call's audio as it flows: what the caller sends us (Inbound) and what we send
// the caller (Outbound). at is the wall-clock time the samples arrived or were sent. A recorder
// implements Tap; a telephony leg feeds it. Implementations must not block and must not keep pcm.
type Tap interface {
	Inbound(pcm []int16, at time.Time)
	Outbound(pcm []int16, at time.Time)
}

// Duration is the play time of n samples at Rate.
func Duration(n int) time.Duration { return time.Duration(n) * time.Second / Rate }

// Samples is the number of samples at Rate in d.
func Samples(d time.Duration) int { return int(d * Rate / time.Second) }
