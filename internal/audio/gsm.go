package audio

/*
#cgo LDFLAGS: -lgsm
#include <gsm.h>

// ivrd_gsm_decode decodes nframes frames from in into out (160 samples per frame).
// wav49 selects Microsoft's packing: 65-byte blocks holding two frames (33 + 32 bytes).
// It returns the number of frames decoded, or -1 - i when frame i is not valid GSM.
static int ivrd_gsm_decode(unsigned char *in, int nframes, short *out, int wav49) {
	gsm g = gsm_create();
	if (!g) return -1000000000;
	if (wav49) {
		int one = 1;
		gsm_option(g, GSM_OPT_WAV49, &one);
	}
	int pos = 0;
	for (int i = 0; i < nframes; i++) {
		if (gsm_decode(g, in + pos, out + 160 * i) < 0) {
			gsm_destroy(g);
			return -1 - i;
		}
		pos += wav49 ? ((i & 1) ? 32 : 33) : 33;
	}
	gsm_destroy(g);
	return nframes;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// GSM 06.10 full-rate framing.
const (
	GSMFrameBytes   = 33  // one raw (.gsm, "toast") frame
	GSMFrameSamples = 160 // 20 ms at 8000 Hz
	gsmWAV49Block   = 65  // two frames in Microsoft's WAV packing
)

// ErrNotGSM is returned (wrapped) by DecodeGSM for data that is not GSM 06.10 frames.
var ErrNotGSM = errors.New("audio: not GSM 06.10 data")

// DecodeGSM decodes a raw .gsm file (consecutive 33-byte GSM 06.10 frames, each starting
// with the 0xD magic nibble) with libgsm. The result is mono PCM at 8000 Hz. A trailing
// partial frame is ignored; data with no complete frame, or any frame without the magic
// nibble, is refused.
func DecodeGSM(data []byte) ([]int16, error) {
	n := len(data) / GSMFrameBytes
	if n == 0 {
		return nil, fmt.Errorf("%w: %d bytes, less than one frame", ErrNotGSM, len(data))
	}
	for i := range n {
		if data[i*GSMFrameBytes]>>4 != 0xD {
			return nil, fmt.Errorf("%w: frame %d has no magic nibble", ErrNotGSM, i)
		}
	}
	return gsmDecode(data, n, false)
}

// decodeGSMWAV49 decodes the data chunk of a WAVE file with format tag 0x31.
func decodeGSMWAV49(data []byte) ([]int16, error) {
	blocks := len(data) / gsmWAV49Block
	if blocks == 0 {
		return []int16{}, nil
	}
	return gsmDecode(data[:blocks*gsmWAV49Block], 2*blocks, true)
}

func gsmDecode(data []byte, frames int, wav49 bool) ([]int16, error) {
	// The caller passes exactly the bytes of `frames` frames: libgsm reads no further.
	out := make([]int16, frames*GSMFrameSamples)
	w := C.int(0)
	if wav49 {
		w = 1
	}
	r := int(C.ivrd_gsm_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.int(frames), (*C.short)(unsafe.Pointer(&out[0])), w))
	switch {
	case r == -1000000000:
		return nil, errors.New("audio: gsm_create failed")
	case r < 0:
		return nil, fmt.Errorf("%w: frame %d does not decode", ErrNotGSM, -1-r)
	}
	return out, nil
}
