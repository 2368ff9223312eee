package audio

import (
	"slices"
	"testing"
)

func TestMixInto(t *testing.T) {
	tests := []struct {
		name     string
		dst, src []int16
		want     []int16
	}{
		{"plain sum", []int16{1, -2, 300}, []int16{10, 20, -30}, []int16{11, 18, 270}},
		{"clamps high", []int16{30000, 32767}, []int16{5000, 1}, []int16{32767, 32767}},
		{"clamps low", []int16{-30000, -32768}, []int16{-5000, -1}, []int16{-32768, -32768}},
		{"src shorter", []int16{1, 2, 3}, []int16{1}, []int16{2, 2, 3}},
		{"dst shorter", []int16{1}, []int16{1, 2, 3}, []int16{2}},
		{"empty", nil, []int16{1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := slices.Clone(tt.dst)
			MixInto(dst, tt.src)
			if !slices.Equal(dst, tt.want) {
				t.Fatalf("got %v, want %v", dst, tt.want)
			}
		})
	}
}

func TestMix2(t *testing.T) {
	dst := make([]int16, 4)
	got := Mix2(dst, []int16{32000, -32000, 5, 7}, []int16{1000, -1000, -5})
	if want := []int16{32767, -32768, 0}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSaturate(t *testing.T) {
	for in, want := range map[int32]int16{0: 0, 32767: 32767, 32768: 32767, -32769: -32768, 1 << 20: 32767, -5: -5} {
		if got := Saturate(in); got != want {
			t.Errorf("Saturate(%d) = %d, want %d", in, got, want)
		}
	}
}
