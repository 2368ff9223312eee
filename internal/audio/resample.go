package audio

/*
#cgo LDFLAGS: -lsoxr
#include <stdlib.h>
#include <soxr.h>

static const char *ivrd_soxr_oneshot(double from, double to,
		const short *in, size_t ilen, short *out, size_t olen, size_t *odone) {
	soxr_io_spec_t io = soxr_io_spec(SOXR_INT16_I, SOXR_INT16_I);
	io.flags |= SOXR_NO_DITHER;
	soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
	size_t idone = 0;
	return soxr_oneshot(from, to, 1, in, ilen, &idone, out, olen, odone, &io, &q, NULL);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// maxRate bounds the sample rates Resample accepts; anything outside (0, maxRate] is refused.
const maxRate = 768000

// Resample converts mono 16-bit PCM from one sample rate to another with libsoxr at high
// quality (20-bit precision, linear phase, no dither, so digital silence stays silent).
// The result has about len(pcm)*to/from samples. Equal rates return a copy.
func Resample(pcm []int16, from, to int) ([]int16, error) {
	if from <= 0 || to <= 0 || from > maxRate || to > maxRate {
		return nil, fmt.Errorf("audio: resample %d Hz -> %d Hz: rate out of range", from, to)
	}
	if len(pcm) == 0 {
		return []int16{}, nil
	}
	if from == to {
		return append([]int16(nil), pcm...), nil
	}
	olen := int((int64(len(pcm))*int64(to)+int64(from)-1)/int64(from)) + 16
	out := make([]int16, olen)
	var odone C.size_t
	cerr := C.ivrd_soxr_oneshot(C.double(from), C.double(to),
		(*C.short)(unsafe.Pointer(&pcm[0])), C.size_t(len(pcm)),
		(*C.short)(unsafe.Pointer(&out[0])), C.size_t(olen), &odone)
	if cerr != nil {
		return nil, fmt.Errorf("audio: soxr %d Hz -> %d Hz: %s", from, to, C.GoString(cerr))
	}
	return out[:int(odone)], nil
}
