package audio

import "math/bits"

// G.711 companding (ITU-T G.711): µ-law (RTP payload type 0, PCMU) and A-law (payload type 8,
// PCMA). One byte per sample at Rate. Negative samples are folded with the ones' complement
// (-1 has magnitude 0), as in the ITU-T G.191 reference code, so the full int16 range encodes
// without overflow.
//
// Decoding uses 256-entry tables; encoding is a few shifts per sample.

var (
	ulawTable [256]int16
	alawTable [256]int16
)

func init() {
	for i := range 256 {
		ulawTable[i] = ulawDecode(byte(i))
		alawTable[i] = alawDecode(byte(i))
	}
}

// LinearToUlaw encodes one sample as µ-law.
func LinearToUlaw(s int16) byte {
	mag := int(s)
	var sign byte
	if mag < 0 {
		mag = ^mag
		sign = 0x80
	}
	// 14-bit magnitude plus the µ-law bias of 33 (132 in 16-bit units).
	mag = mag>>2 + 33
	if mag > 0x1FFF {
		mag = 0x1FFF
	}
	exp := bits.Len(uint(mag)) - 6 // 0..7: segment [32<<exp, 64<<exp)
	mant := (mag >> (exp + 1)) & 0x0F
	return ^(sign | byte(exp)<<4 | byte(mant))
}

// UlawToLinear decodes one µ-law byte.
func UlawToLinear(b byte) int16 { return ulawTable[b] }

func ulawDecode(b byte) int16 {
	u := ^b
	exp := int(u>>4) & 7
	mant := int(u) & 0x0F
	mag := ((2*mant+33)<<exp - 33) << 2
	if u&0x80 != 0 {
		return int16(-mag)
	}
	return int16(mag)
}

// LinearToAlaw encodes one sample as A-law.
func LinearToAlaw(s int16) byte {
	mag := int(s)
	sign := byte(0x80) // A-law sets the sign bit for non-negative samples
	if mag < 0 {
		mag = ^mag
		sign = 0
	}
	mag >>= 4 // 11-bit magnitude
	var code byte
	if mag < 16 {
		code = byte(mag)
	} else {
		seg := bits.Len(uint(mag)) - 4 // 1..7
		code = byte(seg)<<4 | byte((mag>>(seg-1))&0x0F)
	}
	return (sign | code) ^ 0x55
}

// AlawToLinear decodes one A-law byte.
func AlawToLinear(b byte) int16 { return alawTable[b] }

func alawDecode(b byte) int16 {
	u := b ^ 0x55
	seg := int(u>>4) & 7
	mant := int(u) & 0x0F
	var mag int
	if seg == 0 {
		mag = mant<<4 + 8
	} else {
		mag = (mant<<4 + 0x108) << (seg - 1)
	}
	if u&0x80 == 0 {
		return int16(-mag)
	}
	return int16(mag)
}

// EncodeUlaw appends the µ-law encoding of pcm to dst (which may be nil) and returns it.
func EncodeUlaw(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, UlawOf(s))
	}
	return dst
}

// EncodeAlaw appends the A-law encoding of pcm to dst (which may be nil) and returns it.
func EncodeAlaw(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, alawEncTable[int(s>>4)+1<<11])
	}
	return dst
}

// UlawOf is LinearToUlaw by table: the µ-law code of s.
func UlawOf(s int16) byte { return ulawEncTable[int(s>>2)+1<<13] }

// UlawValue is the sample that µ-law code b decodes to.
func UlawValue(b byte) int16 { return ulawTable[b] }

// Encoding tables for the sending path (every frame of every call). LinearToUlaw depends
// only on the top 14 bits of a sample and LinearToAlaw on the top 12 (the tests check all
// 65,536 samples), so 16 KiB and 4 KiB tables, shared by every call, replace the
// arithmetic.
var (
	ulawEncTable [1 << 14]byte
	alawEncTable [1 << 12]byte
)

func init() {
	for i := range ulawEncTable {
		ulawEncTable[i] = LinearToUlaw(int16((i - 1<<13) << 2))
	}
	for i := range alawEncTable {
		alawEncTable[i] = LinearToAlaw(int16((i - 1<<11) << 4))
	}
}

// DecodeUlaw appends the samples of the µ-law bytes b to dst (which may be nil) and returns it.
func DecodeUlaw(dst []int16, b []byte) []int16 {
	for _, c := range b {
		dst = append(dst, ulawTable[c])
	}
	return dst
}

// DecodeAlaw appends the samples of the A-law bytes b to dst (which may be nil) and returns it.
func DecodeAlaw(dst []int16, b []byte) []int16 {
	for _, c := range b {
		dst = append(dst, alawTable[c])
	}
	return dst
}
