package audio

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tosone/minimp3"
)

// ErrNoMP3Frames is returned by DecodeMP3 when the data holds no decodable MP3 frame.
var ErrNoMP3Frames = errors.New("audio: no mp3 frames")

// DecodeMP3 decodes a whole MP3 file (MPEG-1, 2 or 2.5 Layer III, any rate) with minimp3.
// It returns mono 16-bit PCM (stereo is folded to mono by averaging) at the file's own
// sample rate, which the caller resamples if it is not Rate.
func DecodeMP3(data []byte) (pcm []int16, rate int, err error) {
	if len(data) == 0 {
		return nil, 0, ErrNoMP3Frames
	}
	dec, raw, err := minimp3.DecodeFull(data)
	if err != nil {
		return nil, 0, fmt.Errorf("audio: decoding mp3: %w", err)
	}
	if dec == nil || dec.SampleRate <= 0 || len(raw) < 2 {
		return nil, 0, ErrNoMP3Frames
	}
	n := len(raw) / 2
	switch dec.Channels {
	case 1:
		pcm = make([]int16, n)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case 2:
		pcm = make([]int16, n/2)
		for i := range pcm {
			l := int32(int16(binary.LittleEndian.Uint16(raw[4*i:])))
			r := int32(int16(binary.LittleEndian.Uint16(raw[4*i+2:])))
			pcm[i] = int16((l + r) / 2)
		}
	default:
		return nil, 0, fmt.Errorf("audio: mp3 with %d channels", dec.Channels)
	}
	return pcm, dec.SampleRate, nil
}
