package softphone

import (
	"os"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// heardSlack is how far the recording may drift from the frames' arrival times before it is
// put right (silence put in, or audio dropped): more than network jitter, less than anyone
// would notice.
const heardSlack = 60 * time.Millisecond

// heard writes what the call hears (the leg's inbound audio) to a WAV file, time-aligned
// from the answer: frames follow each other, kept within heardSlack of where their arrival
// puts them (gaps, when the far end sends nothing or packets are lost, become silence), and
// the file ends at the call's end. It is the leg's tap; its
// methods are safe for concurrent use. A nil *heard (no file asked for) does nothing.
type heard struct {
	f *os.File

	mu  sync.Mutex
	w   *audio.WAVWriter
	t0  time.Time // the answer
	err error
}

// newHeard creates the file at path ("" for none).
func newHeard(path string) (*heard, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w, err := audio.NewWAVWriter(f, audio.Rate)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &heard{f: f, w: w}, nil
}

// start sets the moment the recording's first sample stands for.
func (h *heard) start(t0 time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.t0 = t0
	h.mu.Unlock()
}

// Inbound takes a frame that arrived at at (it ends there).
func (h *heard) Inbound(pcm []int16, at time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil || h.t0.IsZero() {
		return
	}
	pos := int64(audio.Samples(at.Sub(h.t0))) - int64(len(pcm))
	slack := int64(audio.Samples(heardSlack))
	switch d := pos - h.w.Samples(); {
	case d > slack: // behind: what did not come is silence
		h.err = h.w.Silence(int(d))
	case d < -slack: // ahead (a burst, a sender whose clock runs fast): drop the excess
		pcm = pcm[min(int(-d-slack), len(pcm)):]
	}
	if h.err == nil {
		h.err = h.w.Write(pcm)
	}
}

// Outbound is what the softphone sends: not recorded.
func (h *heard) Outbound([]int16, time.Time) {}

// finish pads the recording with silence to end, completes the file and returns its samples
// and size.
func (h *heard) finish(end time.Time) (samples, size int64, err error) {
	if h == nil {
		return 0, 0, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil && !h.t0.IsZero() {
		if gap := int64(audio.Samples(end.Sub(h.t0))) - h.w.Samples(); gap > 0 {
			h.err = h.w.Silence(int(gap))
		}
	}
	if h.err == nil {
		h.err = h.w.Close()
	}
	if cerr := h.f.Close(); h.err == nil {
		h.err = cerr
	}
	h.f = nil
	return h.w.Samples(), h.w.Size(), h.err
}

// abort removes the file if finish did not complete it (the call was not answered).
func (h *heard) abort() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != nil {
		_ = h.f.Close()
		_ = os.Remove(h.f.Name())
		h.f = nil
	}
}
