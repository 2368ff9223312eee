package audio

// Saturate clamps a 32-bit sample sum to the int16 range.
func Saturate(v int32) int16 {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return int16(v)
}

// MixInto adds src into dst sample by sample, clamping at the int16 limits instead of
// wrapping. Only the first min(len(dst), len(src)) samples are touched.
func MixInto(dst, src []int16) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i := range dst {
		dst[i] = Saturate(int32(dst[i]) + int32(src[i]))
	}
}

// Mix2 writes the saturating sum of a and b into dst and returns dst[:n], where n is the
// shortest of the three lengths.
func Mix2(dst, a, b []int16) []int16 {
	n := min(len(dst), len(a), len(b))
	dst, a, b = dst[:n], a[:n], b[:n]
	for i := range dst {
		dst[i] = Saturate(int32(a[i]) + int32(b[i]))
	}
	return dst
}
