package audio

import (
	"math"
	"time"
)

// Hold music: a gentle arpeggio in C major over a soft bass, four chords of two seconds each
// (I-vi-IV-V: C, Am, F, G), eighth notes at 120 bpm. Each note is a bell-like tone (quick
// attack, exponential decay, a touch of second harmonic); the bass swells and fades with its
// chord. Everything lies inside the telephone band (the lowest note is 175 Hz, the highest
// partial about 2.1 kHz) and peaks around -10 dBFS.

// HoldMusicPhrase is the length of one phrase of HoldMusic; audio of a whole number of
// phrases loops without a seam.
const HoldMusicPhrase = 8 * time.Second

const (
	holdNoteDur   = 250 * time.Millisecond // an eighth note at 120 bpm
	holdNoteTail  = 900 * time.Millisecond // how long a note rings
	holdChordDur  = 2 * time.Second
	holdNoteAmp   = 5200.0
	holdBassAmp   = 2600.0
	holdHarmonic  = 0.25               // second partial, relative to the first
	holdDecay     = 0.22               // note decay time constant, seconds
	holdAttack    = 0.008              // note attack, seconds
	holdBassSwell = 0.35               // bass fade in and out, seconds
	holdSemitone  = 1.0594630943592953 // 2^(1/12)
	holdA4        = 440.0
	holdTwoPi     = 2 * math.Pi
	holdRate      = float64(Rate)
	holdNotesPer  = int(holdChordDur / holdNoteDur)
	holdPhraseLen = int(HoldMusicPhrase / holdNoteDur)
)

// holdChords are the phrase's chords: the arpeggio (semitones from A4, one per eighth note)
// and the bass note.
var holdChords = [4]struct {
	arp  [holdNotesPer]int
	bass int
}{
	{[holdNotesPer]int{3, 7, 10, 15, 10, 7, 10, 7}, -9}, // C: C5 E5 G5 C6 G5 E5 G5 E5; bass C4
	{[holdNotesPer]int{0, 3, 7, 12, 7, 3, 7, 3}, -12},   // Am: A4 C5 E5 A5 ...; bass A3
	{[holdNotesPer]int{-4, 0, 3, 8, 3, 0, 3, 0}, -16},   // F: F4 A4 C5 F5 ...; bass F3
	{[holdNotesPer]int{-2, 2, 5, 10, 5, 2, 5, 2}, -14},  // G: G4 B4 D5 G5 ...; bass G3
}

// holdFreq is the frequency of the note n semitones from A4.
func holdFreq(n int) float64 { return holdA4 * math.Pow(holdSemitone, float64(n)) }

// holdNote renders one arpeggio note of frequency f, tail included.
func holdNote(f float64) []float64 {
	wave := make([]float64, Samples(holdNoteTail))
	for i := range wave {
		t := float64(i) / holdRate
		env := math.Exp(-t/holdDecay) * min(1, t/holdAttack, float64(len(wave)-i)/holdRate/holdAttack)
		w := holdTwoPi * f * t
		wave[i] = holdNoteAmp * env * (math.Sin(w) + holdHarmonic*math.Sin(2*w))
	}
	return wave
}

// HoldMusic returns d of generated hold music at Rate: the same samples for the same d. The
// phrase repeats every HoldMusicPhrase; notes ringing past the end wrap round to the start,
// so a whole number of phrases loops seamlessly.
func HoldMusic(d time.Duration) []int16 {
	n := Samples(d)
	if n <= 0 {
		return nil
	}
	acc := make([]float64, n)
	step := Samples(holdNoteDur)
	waves := map[int][]float64{} // one rendered note per pitch
	for k := 0; k*step < n; k++ {
		semis := holdChords[(k%holdPhraseLen)/holdNotesPer].arp[k%holdNotesPer]
		wave, ok := waves[semis]
		if !ok {
			wave = holdNote(holdFreq(semis))
			waves[semis] = wave
		}
		for i, v := range wave {
			acc[(k*step+i)%n] += v
		}
	}
	chordLen := Samples(holdChordDur)
	for c := 0; c*chordLen < n; c++ {
		f := holdFreq(holdChords[c%len(holdChords)].bass)
		m := min(chordLen, n-c*chordLen) // the last chord may be cut short: it fades out early
		for i := range m {
			t := float64(i) / holdRate
			swell := min(1, t/holdBassSwell, float64(m-i)/holdRate/holdBassSwell)
			acc[c*chordLen+i] += holdBassAmp * swell * math.Sin(holdTwoPi*f*t)
		}
	}
	out := make([]int16, n)
	for i, v := range acc {
		out[i] = Saturate(int32(math.Round(v)))
	}
	return out
}
