package audio

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestToneLevel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]int16, 1600)
	for i := range noise {
		noise[i] = int16(rng.IntN(20000) - 10000)
	}
	mixed := SineWave(1000, 200*time.Millisecond, 8000)
	MixInto(mixed, SineWave(2000, 200*time.Millisecond, 8000))
	tests := []struct {
		name     string
		pcm      []int16
		freq     float64
		min, max float64
	}{
		{"pure tone at its frequency", SineWave(1000, 100*time.Millisecond, 10000), 1000, 0.95, 1},
		{"pure tone, non-integer periods", SineWave(697, 50*time.Millisecond, 10000), 697, 0.9, 1},
		{"pure tone, other frequency", SineWave(1000, 100*time.Millisecond, 10000), 2000, 0, 0.01},
		{"pure tone, neighbour 1100 Hz", SineWave(1000, 100*time.Millisecond, 10000), 1100, 0, 0.05},
		{"two equal tones", mixed, 2000, 0.4, 0.6},
		{"silence", make([]int16, 800), 1000, 0, 0},
		{"empty", nil, 1000, 0, 0},
		{"white noise", noise, 1000, 0, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ToneLevel(tt.pcm, Rate, tt.freq)
			if got < tt.min || got > tt.max {
				t.Fatalf("ToneLevel = %.4f, want in [%.2f, %.2f]", got, tt.min, tt.max)
			}
		})
	}
}

func TestRMS(t *testing.T) {
	tests := []struct {
		name string
		pcm  []int16
		want float64
	}{
		{"empty", nil, 0},
		{"constant", []int16{-300, -300, -300, -300}, 300},
		{"sine", SineWave(1000, time.Second, 10000), 10000 / math.Sqrt2},
	}
	for _, tt := range tests {
		if got := RMS(tt.pcm); math.Abs(got-tt.want) > 1 {
			t.Errorf("%s: RMS %.2f, want %.2f", tt.name, got, tt.want)
		}
	}
}

func TestToneSpans(t *testing.T) {
	// 0.3 s silence, 0.5 s of 1 kHz, 0.2 s of 2 kHz, 0.4 s silence, 0.2 s of 1 kHz, then a
	// 1 kHz tone too quiet to count.
	var pcm []int16
	add := func(p []int16) { pcm = append(pcm, p...) }
	add(make([]int16, Samples(300*time.Millisecond)))
	add(SineWave(1000, 500*time.Millisecond, 8000))
	add(SineWave(2000, 200*time.Millisecond, 8000))
	add(make([]int16, Samples(400*time.Millisecond)))
	add(SineWave(1000, 200*time.Millisecond, 8000))
	add(SineWave(1000, 200*time.Millisecond, 50))
	ms := time.Millisecond
	tests := []struct {
		freq float64
		want []Span
	}{
		{1000, []Span{{300 * ms, 800 * ms}, {1400 * ms, 1600 * ms}}},
		{2000, []Span{{800 * ms, 1000 * ms}}},
		{1500, nil},
	}
	for _, tt := range tests {
		got := ToneSpans(pcm, Rate, tt.freq, 20*ms, 0.5)
		if len(got) != len(tt.want) {
			t.Fatalf("%v Hz: spans %v, want %v", tt.freq, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%v Hz: span %d = %v, want %v", tt.freq, i, got[i], tt.want[i])
			}
		}
	}
	if got := ToneSpans(pcm, Rate, 1000, 0, 0.5); got != nil {
		t.Errorf("zero window: %v", got)
	}
}

func TestSineWave(t *testing.T) {
	s := SineWave(1000, 250*time.Millisecond, 1234)
	if len(s) != 2000 {
		t.Fatalf("len %d, want 2000", len(s))
	}
	var peak int16
	for _, v := range s {
		peak = max(peak, v)
	}
	if peak != 1234 || s[0] != 0 {
		t.Fatalf("peak %d first %d", peak, s[0])
	}
}

func TestToneAmplitude(t *testing.T) {
	tone := SineWave(1000, 40*time.Millisecond, 6000) // exactly 40 periods
	for _, c := range []struct {
		name     string
		pcm      []int16
		freq     float64
		min, max float64
	}{
		{"the tone", tone, 1000, 5900, 6100},
		{"another frequency", tone, 2000, 0, 100},
		{"silence", make([]int16, 320), 1000, 0, 0},
		{"empty", nil, 1000, 0, 0},
	} {
		if a := ToneAmplitude(c.pcm, Rate, c.freq); a < c.min || a > c.max {
			t.Errorf("%s: amplitude %.1f, want %.0f..%.0f", c.name, a, c.min, c.max)
		}
	}
}
