package audio

import (
	"math"
	"testing"
)

// resampleSine is n samples of a freq Hz sine at rate with peak amp.
func resampleSine(freq float64, rate, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

func TestResampleTone(t *testing.T) {
	tests := []struct {
		name     string
		from, to int
		freq     float64
		wantTone bool // false: the tone is above the target Nyquist and must be filtered out
	}{
		{"espeak 22050 to 8000, 1 kHz", 22050, 8000, 1000, true},
		{"44100 to 8000, 440 Hz", 44100, 8000, 440, true},
		{"16000 to 8000, 3 kHz", 16000, 8000, 3000, true},
		{"11025 to 8000, 2 kHz", 11025, 8000, 2000, true},
		{"8000 to 16000, 1 kHz", 8000, 16000, 1000, true},
		{"22050 to 8000, 6 kHz aliasing removed", 22050, 8000, 6000, false},
		{"48000 to 8000, 5 kHz aliasing removed", 48000, 8000, 5000, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := resampleSine(tc.freq, tc.from, tc.from, 16000) // one second
			out, err := Resample(in, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if d := len(out) - tc.to; d < -2 || d > 2 {
				t.Fatalf("len = %d, want about %d", len(out), tc.to)
			}
			// Skip the filter's edges.
			mid := out[tc.to/10 : len(out)-tc.to/10]
			rms := RMS(mid)
			if tc.wantTone {
				want := 16000 / math.Sqrt2
				if math.Abs(rms-want)/want > 0.05 {
					t.Errorf("RMS = %.0f, want about %.0f", rms, want)
				}
				if lvl := ToneLevel(mid, tc.to, tc.freq); lvl < 0.95 {
					t.Errorf("tone level %.3f at %.0f Hz, want > 0.95", lvl, tc.freq)
				}
			} else if rms > 50 {
				t.Errorf("RMS = %.0f for a tone above the Nyquist of %d Hz, want filtered out", rms, tc.to)
			}
		})
	}
}

func TestResampleEdgeCases(t *testing.T) {
	if out, err := Resample(nil, 22050, 8000); err != nil || len(out) != 0 {
		t.Fatalf("empty: %v %v", out, err)
	}
	in := []int16{1, 2, 3}
	out, err := Resample(in, 8000, 8000)
	if err != nil || len(out) != 3 || out[2] != 3 {
		t.Fatalf("same rate: %v %v", out, err)
	}
	out[0] = 99
	if in[0] != 1 {
		t.Fatal("same rate must copy")
	}
	for _, r := range [][2]int{{0, 8000}, {8000, 0}, {-1, 8000}, {8000, 10_000_000}} {
		if _, err := Resample(in, r[0], r[1]); err == nil {
			t.Errorf("Resample(%d -> %d) = nil error", r[0], r[1])
		}
	}
	silence := make([]int16, 22050)
	out, err = Resample(silence, 22050, 8000)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range out {
		if s != 0 {
			t.Fatalf("silence resampled to %d at %d (dither must be off)", s, i)
		}
	}
	// Full-scale square wave: must clip, never wrap.
	sq := make([]int16, 22050)
	for i := range sq {
		if (i/50)%2 == 0 {
			sq[i] = math.MaxInt16
		} else {
			sq[i] = math.MinInt16
		}
	}
	if _, err := Resample(sq, 22050, 8000); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkResample22050To8000(b *testing.B) {
	in := resampleSine(1000, 22050, 22050*10, 10000)
	b.SetBytes(int64(len(in) * 2))
	for b.Loop() {
		if _, err := Resample(in, 22050, 8000); err != nil {
			b.Fatal(err)
		}
	}
}
