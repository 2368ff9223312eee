package audio

import (
	"slices"
	"testing"
	"time"
)

func TestHoldMusic(t *testing.T) {
	const d = 2 * HoldMusicPhrase
	pcm := HoldMusic(d)
	if len(pcm) != Samples(d) {
		t.Fatalf("%d samples, want %d", len(pcm), Samples(d))
	}
	if !slices.Equal(pcm, HoldMusic(d)) {
		t.Fatal("not deterministic")
	}
	// Never silent, never clipping.
	peak := 0
	win := Samples(50 * time.Millisecond)
	for i := 0; i+win <= len(pcm); i += win {
		if rms := RMS(pcm[i : i+win]); rms < 300 {
			t.Fatalf("window at %v has RMS %.0f", Duration(i), rms)
		}
	}
	for _, v := range pcm {
		peak = max(peak, int(v), -int(v))
	}
	if peak > 16000 || peak < 4000 {
		t.Errorf("peak %d, want a comfortable level", peak)
	}
	// Each chord opens with its arpeggio's first note (C5, A4, F4, G4), clearly audible over
	// the bass and the tails of earlier notes.
	opening := []float64{523.25, 440, 349.23, 392}
	for c, f := range opening {
		for _, phrase := range []time.Duration{0, HoldMusicPhrase} {
			at := phrase + time.Duration(c)*2*time.Second + 20*time.Millisecond
			blk := pcm[Samples(at) : Samples(at)+Samples(100*time.Millisecond)]
			if lvl := ToneLevel(blk, Rate, f); lvl < 0.25 {
				t.Errorf("chord %d at %v: %.0f Hz carries %.2f of the energy", c, at, f, lvl)
			}
		}
	}
	// The phrase repeats exactly, and the loop point has no jump.
	n := Samples(HoldMusicPhrase)
	if !slices.Equal(pcm[:n], pcm[n:]) {
		t.Error("second phrase differs from the first")
	}
	if jump := int(pcm[0]) - int(pcm[len(pcm)-1]); jump > 1500 || jump < -1500 {
		t.Errorf("loop seam jumps by %d", jump)
	}
}

func TestHoldMusicLengths(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {-time.Second, 0}, {time.Millisecond, 8}, {3 * time.Second, 24000}, {8100 * time.Millisecond, 64800},
	}
	for _, tt := range tests {
		pcm := HoldMusic(tt.d)
		if len(pcm) != tt.want {
			t.Errorf("HoldMusic(%v): %d samples, want %d", tt.d, len(pcm), tt.want)
		}
		if tt.want >= Rate && RMS(pcm) < 1000 {
			t.Errorf("HoldMusic(%v) RMS %.0f", tt.d, RMS(pcm))
		}
	}
}

func BenchmarkHoldMusic(b *testing.B) {
	for b.Loop() {
		HoldMusic(HoldMusicPhrase)
	}
}
