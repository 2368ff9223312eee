package audio

import (
	"math"
	"testing"

	"github.com/zaf/g711"
)

// The reference implementation (zaf/g711, already a dependency through diago) must agree with
// ours on every input.
func TestG711MatchesReference(t *testing.T) {
	for v := math.MinInt16; v <= math.MaxInt16; v++ {
		s := int16(v)
		if got, want := LinearToUlaw(s), g711.EncodeUlawFrame(s); got != want {
			t.Fatalf("LinearToUlaw(%d) = %#x, reference %#x", s, got, want)
		}
		if got, want := LinearToAlaw(s), g711.EncodeAlawFrame(s); got != want {
			t.Fatalf("LinearToAlaw(%d) = %#x, reference %#x", s, got, want)
		}
	}
	for b := range 256 {
		if got, want := UlawToLinear(byte(b)), g711.DecodeUlawFrame(byte(b)); got != want {
			t.Fatalf("UlawToLinear(%#x) = %d, reference %d", b, got, want)
		}
		if got, want := AlawToLinear(byte(b)), g711.DecodeAlawFrame(byte(b)); got != want {
			t.Fatalf("AlawToLinear(%#x) = %d, reference %d", b, got, want)
		}
	}
}

// Known code points from ITU-T G.711 tables 1a/2a.
func TestG711KnownValues(t *testing.T) {
	tests := []struct {
		name string
		got  int
		want int
	}{
		{"ulaw 0xFF is +0", int(UlawToLinear(0xFF)), 0},
		{"ulaw 0x7F is -0", int(UlawToLinear(0x7F)), 0},
		{"ulaw 0x80 is max", int(UlawToLinear(0x80)), 32124},
		{"ulaw 0x00 is min", int(UlawToLinear(0x00)), -32124},
		{"alaw 0xD5 is +8", int(AlawToLinear(0xD5)), 8},
		{"alaw 0x55 is -8", int(AlawToLinear(0x55)), -8},
		{"alaw 0xAA is max", int(AlawToLinear(0xAA)), 32256},
		{"alaw 0x2A is min", int(AlawToLinear(0x2A)), -32256},
		{"encode 0 ulaw", int(LinearToUlaw(0)), 0xFF},
		{"encode 0 alaw", int(LinearToAlaw(0)), 0xD5},
		{"encode max ulaw", int(LinearToUlaw(math.MaxInt16)), 0x80},
		{"encode min ulaw", int(LinearToUlaw(math.MinInt16)), 0x00},
		{"encode max alaw", int(LinearToAlaw(math.MaxInt16)), 0xAA},
		{"encode min alaw", int(LinearToAlaw(math.MinInt16)), 0x2A},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %#x (%d), want %#x (%d)", tt.name, tt.got, tt.got, tt.want, tt.want)
		}
	}
}

// Every code decodes to a value that encodes back to the same code (except the duplicate zero
// of µ-law, which encodes to +0).
func TestG711CodeRoundTrip(t *testing.T) {
	for b := range 256 {
		if got := LinearToAlaw(AlawToLinear(byte(b))); got != byte(b) {
			t.Errorf("alaw %#x -> %d -> %#x", b, AlawToLinear(byte(b)), got)
		}
		want := byte(b)
		if b == 0x7F {
			want = 0xFF
		}
		if got := LinearToUlaw(UlawToLinear(byte(b))); got != want {
			t.Errorf("ulaw %#x -> %d -> %#x", b, UlawToLinear(byte(b)), got)
		}
	}
}

// A sine through each law keeps the SNR G.711 promises (about 38 dB for a loud tone).
func TestG711SineSNR(t *testing.T) {
	pcm := make([]int16, Rate)
	for i := range pcm {
		pcm[i] = int16(12000 * math.Sin(2*math.Pi*1000*float64(i)/Rate+0.3))
	}
	laws := []struct {
		name string
		enc  func([]byte, []int16) []byte
		dec  func([]int16, []byte) []int16
	}{
		{"ulaw", EncodeUlaw, DecodeUlaw},
		{"alaw", EncodeAlaw, DecodeAlaw},
	}
	for _, law := range laws {
		t.Run(law.name, func(t *testing.T) {
			enc := law.enc(nil, pcm)
			if len(enc) != len(pcm) {
				t.Fatalf("encoded %d bytes for %d samples", len(enc), len(pcm))
			}
			dec := law.dec(nil, enc)
			var sig, noise float64
			for i := range pcm {
				d := float64(dec[i]) - float64(pcm[i])
				sig += float64(pcm[i]) * float64(pcm[i])
				noise += d * d
			}
			snr := 10 * math.Log10(sig/noise)
			if snr < 33 {
				t.Fatalf("SNR %.1f dB, want >= 33", snr)
			}
		})
	}
}

func TestG711Append(t *testing.T) {
	dst := []byte{1, 2}
	dst = EncodeUlaw(dst, []int16{0, 0})
	if len(dst) != 4 || dst[0] != 1 || dst[2] != 0xFF {
		t.Fatalf("EncodeUlaw did not append: %v", dst)
	}
	pcm := DecodeAlaw([]int16{7}, []byte{0xD5})
	if len(pcm) != 2 || pcm[0] != 7 || pcm[1] != 8 {
		t.Fatalf("DecodeAlaw did not append: %v", pcm)
	}
}

func BenchmarkEncodeUlawFrame(b *testing.B) {
	pcm := make([]int16, FrameSamples)
	for i := range pcm {
		pcm[i] = int16(i * 200)
	}
	buf := make([]byte, 0, FrameSamples)
	for b.Loop() {
		buf = EncodeUlaw(buf[:0], pcm)
	}
}

// The table-driven EncodeUlaw/EncodeAlaw agree with LinearToUlaw/LinearToAlaw everywhere.
func TestG711EncodeTablesMatch(t *testing.T) {
	pcm := make([]int16, 0, 1<<16)
	for v := -32768; v <= 32767; v++ {
		pcm = append(pcm, int16(v))
	}
	u := EncodeUlaw(nil, pcm)
	a := EncodeAlaw(nil, pcm)
	for i, s := range pcm {
		if u[i] != LinearToUlaw(s) {
			t.Fatalf("µ-law of %d: table %#x, arithmetic %#x", s, u[i], LinearToUlaw(s))
		}
		if a[i] != LinearToAlaw(s) {
			t.Fatalf("A-law of %d: table %#x, arithmetic %#x", s, a[i], LinearToAlaw(s))
		}
	}
}
