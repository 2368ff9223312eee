package telephony

import (
	"slices"
	"testing"

	"github.com/ivrd/ivrd/internal/audio"
)

// counting returns n samples 1, 2, 3... continuing from *next.
func counting(next *int16, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		*next++
		s[i] = *next
	}
	return s
}

func TestJitterBuf(t *testing.T) {
	const F = audio.FrameSamples
	tests := []struct {
		name string
		ops  []int // >0: push that many samples; -1: pull a frame
		want []int // per pull: the first sample (0 = silence), -n = n samples then silence
	}{
		{"prefill holds back one frame", []int{F, -1, F, -1, -1}, []int{0, 1, F + 1}},
		{"odd packet sizes", []int{80, 240, -1, -1}, []int{1, F + 1}},
		{"underrun pads, then prefills again", []int{2 * F, -1, -1, -1, F, -1, F, -1},
			[]int{1, F + 1, 0, 0, 2*F + 1}},
		{"partial frame on underrun", []int{2*F + 40, -1, -1, -1, -1}, []int{1, F + 1, -(2*F + 1), 0}},
		{"overflow drops the oldest", []int{8 * F, -1}, []int{2*F + 1}},
		{"huge packet keeps its newest part", []int{10 * F, -1}, []int{4*F + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j jitterBuf
			var next int16
			frame := make([]int16, F)
			var got []int
			for _, op := range tt.ops {
				if op > 0 {
					j.push(counting(&next, op))
					continue
				}
				had := j.pull(frame)
				switch {
				case frame[0] == 0:
					got = append(got, 0)
					if had {
						t.Errorf("pull reported audio for silence")
					}
				case frame[F-1] == 0:
					got = append(got, -int(frame[0]))
				default:
					got = append(got, int(frame[0]))
					if frame[F-1] != frame[0]+F-1 {
						t.Errorf("frame not contiguous: %d..%d", frame[0], frame[F-1])
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("pulls %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzJitterBuf runs arbitrary push/pull sequences: the buffer never holds more than
// jitterCap, and audio comes out in order, each sample at most once.
func FuzzJitterBuf(f *testing.F) {
	f.Add([]byte{160, 0, 160, 0, 0, 0, 255, 0})
	f.Add([]byte{80, 81, 0, 0, 200, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var j jitterBuf
		var next, last int16
		frame := make([]int16, audio.FrameSamples)
		for _, op := range ops {
			if op > 0 {
				j.push(counting(&next, int(op)*4))
			} else {
				j.pull(frame)
				for _, v := range frame {
					if v == 0 {
						continue
					}
					if v <= last {
						t.Fatalf("sample %d after %d", v, last)
					}
					last = v
				}
			}
			if j.n < 0 || j.n > jitterCap || j.start < 0 || j.start >= jitterCap {
				t.Fatalf("n %d start %d", j.n, j.start)
			}
			if next > 30000 {
				return
			}
		}
	})
}
