package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// WAV format tags (the fmt chunk's wFormatTag, or the first two bytes of the extensible
// SubFormat GUID).
const (
	WAVFormatPCM        = 0x0001
	WAVFormatFloat      = 0x0003
	WAVFormatALaw       = 0x0006
	WAVFormatMuLaw      = 0x0007
	WAVFormatGSM610     = 0x0031 // Microsoft GSM 06.10 ("WAV49"), 65-byte blocks of 320 samples
	WAVFormatExtensible = 0xFFFE
)

// ErrNotWAV is returned by DecodeWAV when the data is not a RIFF/WAVE file at all.
var ErrNotWAV = errors.New("audio: not a RIFF/WAVE file")

// ErrWAVUnsupported is returned (wrapped) by DecodeWAV for a WAVE file it cannot decode:
// missing chunks, an unknown encoding or absurd parameters.
var ErrWAVUnsupported = errors.New("audio: unsupported WAVE file")

// WAVInfo describes a WAVE file's encoding, as read from its fmt chunk.
type WAVInfo struct {
	Format     int // one of the WAVFormat* tags (extensible files report their SubFormat)
	Channels   int
	Rate       int
	Bits       int // bits per sample as stored (8 for G.711, 0 for GSM)
	BlockAlign int
}

const (
	wavMaxChannels = 64
	wavMaxRate     = 768000
)

// DecodeWAV decodes a whole WAVE file: integer PCM of 8, 16, 24 or 32 bits, 32/64-bit float,
// µ-law, A-law and GSM 06.10, any rate and channel count. Channels are averaged into mono.
// It returns 16-bit PCM at the file's own rate, which the caller resamples if it is not Rate.
//
// Streaming writers (espeak-ng --stdout, sox to a pipe) put a placeholder such as 0x7ffff000
// or 0xffffffff in the RIFF and data sizes; a data chunk that claims more than the file holds
// is read to the end of the file. A trailing partial sample frame is dropped.
func DecodeWAV(data []byte) (pcm []int16, info WAVInfo, err error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, info, ErrNotWAV
	}
	var haveFmt bool
	pos := 12
	for pos+8 <= len(data) {
		id := string(data[pos : pos+4])
		size := int64(binary.LittleEndian.Uint32(data[pos+4:]))
		body := pos + 8
		end := int64(body) + size
		if end > int64(len(data)) {
			end = int64(len(data))
		}
		chunk := data[body:int(end)]
		switch id {
		case "fmt ":
			info, err = parseWAVFmt(chunk)
			if err != nil {
				return nil, info, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, info, fmt.Errorf("%w: data chunk before fmt chunk", ErrWAVUnsupported)
			}
			pcm, err = decodeWAVData(chunk, info)
			return pcm, info, err
		}
		next := int64(body) + size + size&1 // chunks are padded to an even length
		if next > int64(len(data)) {
			break
		}
		pos = int(next)
	}
	if !haveFmt {
		return nil, info, fmt.Errorf("%w: no fmt chunk", ErrWAVUnsupported)
	}
	return nil, info, fmt.Errorf("%w: no data chunk", ErrWAVUnsupported)
}

func parseWAVFmt(b []byte) (WAVInfo, error) {
	if len(b) < 16 {
		return WAVInfo{}, fmt.Errorf("%w: fmt chunk of %d bytes", ErrWAVUnsupported, len(b))
	}
	info := WAVInfo{
		Format:     int(binary.LittleEndian.Uint16(b[0:])),
		Channels:   int(binary.LittleEndian.Uint16(b[2:])),
		Rate:       int(binary.LittleEndian.Uint32(b[4:])),
		BlockAlign: int(binary.LittleEndian.Uint16(b[12:])),
		Bits:       int(binary.LittleEndian.Uint16(b[14:])),
	}
	if info.Format == WAVFormatExtensible {
		// cbSize(2) validBits(2) channelMask(4) SubFormat GUID(16) after the 16 basic bytes.
		if len(b) < 40 {
			return info, fmt.Errorf("%w: short extensible fmt chunk", ErrWAVUnsupported)
		}
		info.Format = int(binary.LittleEndian.Uint16(b[24:]))
	}
	if info.Channels < 1 || info.Channels > wavMaxChannels {
		return info, fmt.Errorf("%w: %d channels", ErrWAVUnsupported, info.Channels)
	}
	if info.Rate < 1 || info.Rate > wavMaxRate {
		return info, fmt.Errorf("%w: rate %d Hz", ErrWAVUnsupported, info.Rate)
	}
	switch info.Format {
	case WAVFormatPCM:
		if info.Bits != 8 && info.Bits != 16 && info.Bits != 24 && info.Bits != 32 {
			return info, fmt.Errorf("%w: %d-bit PCM", ErrWAVUnsupported, info.Bits)
		}
	case WAVFormatFloat:
		if info.Bits != 32 && info.Bits != 64 {
			return info, fmt.Errorf("%w: %d-bit float", ErrWAVUnsupported, info.Bits)
		}
	case WAVFormatALaw, WAVFormatMuLaw:
		if info.Bits != 8 {
			return info, fmt.Errorf("%w: %d-bit G.711", ErrWAVUnsupported, info.Bits)
		}
	case WAVFormatGSM610:
		if info.Channels != 1 {
			return info, fmt.Errorf("%w: GSM with %d channels", ErrWAVUnsupported, info.Channels)
		}
		info.Bits = 0
	default:
		return info, fmt.Errorf("%w: format tag 0x%04x", ErrWAVUnsupported, info.Format)
	}
	return info, nil
}

func decodeWAVData(b []byte, info WAVInfo) ([]int16, error) {
	if info.Format == WAVFormatGSM610 {
		return decodeGSMWAV49(b)
	}
	bytesPer := info.Bits / 8
	frame := bytesPer * info.Channels
	n := len(b) / frame
	out := make([]int16, n)
	for i := range n {
		var sum int64
		base := i * frame
		for c := range info.Channels {
			sum += int64(wavSample(b[base+c*bytesPer:], info.Format, bytesPer))
		}
		out[i] = int16(sum / int64(info.Channels))
	}
	return out, nil
}

// wavSample decodes one stored sample to 16 bits.
func wavSample(b []byte, format, bytesPer int) int16 {
	switch format {
	case WAVFormatMuLaw:
		return UlawToLinear(b[0])
	case WAVFormatALaw:
		return AlawToLinear(b[0])
	case WAVFormatFloat:
		var f float64
		if bytesPer == 4 {
			f = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		} else {
			f = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		if math.IsNaN(f) {
			return 0
		}
		return int16(math.Round(math.Max(-32768, math.Min(32767, f*32768))))
	}
	switch bytesPer { // integer PCM
	case 1:
		return int16(int(b[0])-128) << 8 // 8-bit WAV is unsigned
	case 2:
		return int16(binary.LittleEndian.Uint16(b))
	case 3:
		return int16(uint16(b[1]) | uint16(b[2])<<8)
	default:
		return int16(binary.LittleEndian.Uint16(b[2:]))
	}
}

// EncodeWAV returns a canonical 44-byte-header WAVE file of 16-bit mono PCM at rate.
func EncodeWAV(pcm []int16, rate int) []byte {
	dataLen := 2 * len(pcm)
	out := make([]byte, 44+dataLen)
	copy(out[0:], "RIFF")
	binary.LittleEndian.PutUint32(out[4:], uint32(36+dataLen))
	copy(out[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(out[16:], 16)
	binary.LittleEndian.PutUint16(out[20:], WAVFormatPCM)
	binary.LittleEndian.PutUint16(out[22:], 1)
	binary.LittleEndian.PutUint32(out[24:], uint32(rate))
	binary.LittleEndian.PutUint32(out[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(out[32:], 2)
	binary.LittleEndian.PutUint16(out[34:], 16)
	copy(out[36:], "data")
	binary.LittleEndian.PutUint32(out[40:], uint32(dataLen))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(out[44+2*i:], uint16(s))
	}
	return out
}
