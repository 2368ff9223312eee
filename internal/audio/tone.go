package audio

import (
	"math"
	"time"
)

// MinToneRMS is the RMS level below which ToneSpans treats a window as silence whatever its
// spectrum (about -50 dBFS): codec noise in a quiet stretch can look "tonal".
const MinToneRMS = 100

// ToneLevel is the fraction (0..1) of the energy of pcm that lies at freq Hz, measured with
// the Goertzel algorithm over the whole block. A pure sine at freq spanning a whole number
// of periods gives about 1; silence or other content gives about 0.
func ToneLevel(pcm []int16, rate int, freq float64) float64 {
	n := len(pcm)
	if n == 0 || rate <= 0 {
		return 0
	}
	var energy float64
	for _, s := range pcm {
		v := float64(s)
		energy += v * v
	}
	if energy == 0 {
		return 0
	}
	level := 2 * goertzelPower(pcm, rate, freq) / (float64(n) * energy)
	return min(max(level, 0), 1)
}

// ToneAmplitude estimates the amplitude of the freq Hz component of pcm (Goertzel over the
// whole block): about A for a sine of amplitude A spanning a whole number of periods.
func ToneAmplitude(pcm []int16, rate int, freq float64) float64 {
	if len(pcm) == 0 || rate <= 0 {
		return 0
	}
	return 2 * math.Sqrt(max(goertzelPower(pcm, rate, freq), 0)) / float64(len(pcm))
}

// goertzelPower is |X(w)|^2 of pcm at freq Hz, for a (possibly non-integer) bin.
func goertzelPower(pcm []int16, rate int, freq float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for _, s := range pcm {
		s0 := float64(s) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// RMS is the root mean square of pcm (0 for an empty slice).
func RMS(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var sum float64
	for _, s := range pcm {
		v := float64(s)
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

// Span is a stretch of audio, as offsets from its beginning.
type Span struct {
	Start, End time.Duration
}

// Len is End-Start.
func (s Span) Len() time.Duration { return s.End - s.Start }

// ToneSpans cuts pcm (at rate) into consecutive windows of the given length and returns the
// stretches where freq carries at least threshold (0..1) of a window's energy and the window
// is louder than MinToneRMS. Adjacent tonal windows merge into one span, so the boundaries
// are accurate to one window. Tests use it to find a known tone in decoded audio.
func ToneSpans(pcm []int16, rate int, freq float64, window time.Duration, threshold float64) []Span {
	if rate <= 0 {
		return nil
	}
	ws := int(window * time.Duration(rate) / time.Second)
	if ws <= 0 {
		return nil
	}
	at := func(i int) time.Duration { return time.Duration(i) * time.Second / time.Duration(rate) }
	var spans []Span
	open := false
	for i := 0; i+ws <= len(pcm); i += ws {
		blk := pcm[i : i+ws]
		on := RMS(blk) >= MinToneRMS && ToneLevel(blk, rate, freq) >= threshold
		switch {
		case on && !open:
			spans = append(spans, Span{Start: at(i), End: at(i + ws)})
			open = true
		case on:
			spans[len(spans)-1].End = at(i + ws)
		default:
			open = false
		}
	}
	return spans
}

// SineWave is d of a freq Hz sine at Rate with peak amplitude amp, starting at phase 0.
func SineWave(freq float64, d time.Duration, amp int16) []int16 {
	n := Samples(d)
	out := make([]int16, n)
	w := 2 * math.Pi * freq / Rate
	for i := range out {
		out[i] = int16(math.Round(float64(amp) * math.Sin(w*float64(i))))
	}
	return out
}
