package recording

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

const (
	// ringSize is each direction's buffer, in samples (1.024 s): audio that has arrived but
	// is not yet mixed. It must be a power of two.
	ringSize = 8192
	ringMask = ringSize - 1
	// mixChunk is how many samples the mixer takes under the lock at a time.
	mixChunk = 1152
	// gapThreshold: a direction whose next packet starts this much later than where its
	// audio ends has had a gap (silence suppression, nothing played), which becomes silence.
	// Packets closer than this (jitter, bursts) are appended back to back.
	gapThreshold = 60 * time.Millisecond
	// maxLead: a direction whose audio runs this far ahead of the wall clock (a far end
	// whose clock is fast, bursts that never drain) drops packets until it is back in line.
	maxLead = 400 * time.Millisecond
	// stallTolerance: a direction whose audio runs this far ahead of the wall clock right
	// after a gap had its packets held up, not a silence; see closeGap.
	stallTolerance = 20 * time.Millisecond
)

// Result describes a finished or recovered recording.
type Result struct {
	Path     string        // the .mp3 file
	Duration time.Duration // play time, from the frame headers
	Bytes    int64         // file size
	Channels int           // Mono or Dual (0 when the file holds no frame)
}

// Channel layouts of a recording.
const (
	Mono = 1 // both directions mixed into one channel
	Dual = 2 // stereo: the caller (Inbound) left, everything sent to the caller (Outbound) right
)

// track is one direction of the call: a ring of samples indexed by absolute position (samples
// since the recording's start). Slots at or beyond next are always zero, so skipping ahead
// (a gap) needs no writes: the silence is already there.
//
// Samples are kept as G.711 µ-law, the telephone's own 8-bit coding, stored inverted
// (code ^ 0xFF) so that the zero byte is silence. A µ-law call's audio is recorded exactly as
// it crossed the network in either direction (prompts exactly as the caller heard them),
// and each call holds half the memory that 16-bit samples would take.
type track struct {
	next int64 // position just past the last sample written
	// The latest gap put skipped: silence over [gapFrom, gapTo), which closeGap may shrink.
	gapFrom, gapTo int64
	ring           [ringSize]byte
}

// ulawSilence is µ-law's code for 0 (0xFF), which the ring stores as the zero byte.
const ulawSilence = 0xFF

func toRing(s int16) byte   { return audio.UlawOf(s) ^ ulawSilence }
func fromRing(b byte) int16 { return audio.UlawValue(b ^ ulawSilence) }

// Recording is one call being recorded. It implements audio.Tap; Inbound and Outbound may be
// called from any goroutines, concurrently with each other and with Finish.
type Recording struct {
	r        *Recorder
	log      *slog.Logger
	id       string
	start    time.Time
	part     string
	f        *os.File
	enc      *audio.AsyncMP3Encoder
	channels int // Mono or Dual

	mu      sync.Mutex // guards closed, mixed, in, out, dropped, pauses
	closed  bool
	mixed   int64 // position up to which both tracks have been mixed
	in, out track
	dropped int64 // samples dropped (buffer full, or too far ahead)
	pauses  []pause

	// Used only by the mix loop, and by Finish once the loop has let go of the recording.
	loop        *mixLoop    // nil for a manual recorder
	nextMix     time.Time   // guarded by loop.mu
	mixing      atomic.Bool // a mix goroutine is started or running
	mixMu       sync.Mutex  // held by a mix goroutine; unschedule takes it to wait one out
	unscheduled bool        // guarded by mixMu: Finish has taken over the mixing
	scratch     [Dual * mixChunk]int16
	parts       []pausedPart // the paused parts of the chunk being mixed
	trim        int          // samples (per channel) still to skip before encoding (the decoder-side MP3 delay)
	werr        error

	finish sync.Once
	res    Result
	err    error
}

var _ audio.Tap = (*Recording)(nil)

// ID is the recording's id.
func (rec *Recording) ID() string { return rec.id }

// Start is the wall-clock time of the file's first sample.
func (rec *Recording) Start() time.Time { return rec.start }

// PartPath is the file being written.
func (rec *Recording) PartPath() string { return rec.part }

// Channels is the recording's layout: Mono or Dual.
func (rec *Recording) Channels() int { return rec.channels }

// Inbound takes caller-to-us audio: pcm (Rate, mono) whose first sample arrived at at.
// It copies pcm and returns at once; it is ignored after Finish.
func (rec *Recording) Inbound(pcm []int16, at time.Time) { rec.put(&rec.in, pcm, at) }

// Outbound takes us-to-caller audio (prompts as they are sent): pcm whose first sample was
// sent at at. It copies pcm and returns at once; it is ignored after Finish.
func (rec *Recording) Outbound(pcm []int16, at time.Time) { rec.put(&rec.out, pcm, at) }

// pos is the position (samples since start) of wall-clock time t. Times absurdly far from
// start (a zero time.Time) are clamped so the arithmetic cannot overflow.
func (rec *Recording) pos(t time.Time) int64 {
	const far = 10000 * time.Hour
	return int64(audio.Samples(min(max(t.Sub(rec.start), -far), far)))
}

func (rec *Recording) put(t *track, pcm []int16, at time.Time) {
	if len(pcm) == 0 {
		return
	}
	p := rec.pos(at)
	n := int64(len(pcm))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.closed {
		return
	}
	if late := rec.mixed - p; late > 0 {
		// Stamped for a time the mixer has already written (held up longer than the mix
		// lag): that part is lost, the rest goes where it belongs.
		if late >= n {
			rec.dropped += n
			return
		}
		rec.dropped += late
		pcm, p, n = pcm[late:], rec.mixed, n-late
	}
	w := t.next
	gapFrom, gapTo := t.gapFrom, t.gapTo
	switch {
	case p > w+int64(audio.Samples(gapThreshold)):
		gapFrom, gapTo = w, p
		w = p // a gap: the slots in between are already zero
	case w-p > int64(audio.Samples(maxLead)):
		rec.dropped += n // running ahead of the clock
		return
	case w-p >= int64(audio.Samples(stallTolerance)):
		w = rec.closeGap(t, w-p)
		gapFrom, gapTo = t.gapFrom, t.gapTo
	}
	if w+n-rec.mixed > ringSize {
		// The mixer is far behind (or at is far in the future): keep the timeline, lose
		// this packet.
		rec.dropped += n
		return
	}
	t.gapFrom, t.gapTo = gapFrom, gapTo
	for k, v := range pcm {
		t.ring[(w+int64(k))&ringMask] = toRing(v)
	}
	t.next = w + n
}

// closeGap handles a track that runs ahead of the clock by ahead samples. If that follows
// a gap that is not mixed yet, the gap was (at least partly) packets held up on the way
// and now arriving in a burst, not silence: it moves the audio written since the gap back
// by up to ahead samples and returns the new end of the track.
func (rec *Recording) closeGap(t *track, ahead int64) int64 {
	w := t.next
	s := min(ahead, t.gapTo-max(t.gapFrom, rec.mixed))
	if s <= 0 {
		return w
	}
	for q := t.gapTo; q < w; q++ {
		t.ring[(q-s)&ringMask] = t.ring[q&ringMask]
	}
	for q := w - s; q < w; q++ {
		t.ring[q&ringMask] = 0
	}
	t.gapTo -= s
	t.next = w - s
	return t.next
}

// mixTo mixes both tracks up to position h (silence where a track has nothing), encodes the
// result and writes it to the file. After a write error it still drains the tracks, so the
// call goes on, but writes nothing more; Finish reports the error.
func (rec *Recording) mixTo(h int64) {
	for {
		rec.mu.Lock()
		n := int(min(h-rec.mixed, mixChunk))
		if n <= 0 {
			rec.mu.Unlock()
			return
		}
		end := rec.mixed + int64(n)
		for _, t := range []*track{&rec.in, &rec.out} {
			if t.next < end {
				t.next = end // a silent direction: pad it up to the horizon
			}
		}
		i := int(rec.mixed & ringMask)
		for k := range n {
			j := (i + k) & ringMask
			in, out := fromRing(rec.in.ring[j]), fromRing(rec.out.ring[j])
			if rec.channels == Dual {
				rec.scratch[2*k], rec.scratch[2*k+1] = in, out
			} else {
				rec.scratch[k] = audio.Saturate(int32(in) + int32(out))
			}
			rec.in.ring[j], rec.out.ring[j] = 0, 0
		}
		rec.parts = rec.pausedIn(rec.parts[:0], rec.mixed, end)
		rec.mixed = end
		rec.mu.Unlock()

		pcm := applyPauses(rec.scratch[:n*rec.channels], rec.channels, rec.parts)
		if rec.trim > 0 {
			s := min(rec.trim, len(pcm)/rec.channels)
			rec.trim -= s
			pcm = pcm[s*rec.channels:]
		}
		if rec.werr == nil && len(pcm) > 0 {
			if err := rec.enc.Write(pcm); err != nil {
				rec.werr = err
				rec.log.Error("recording write failed", "id", rec.id, "err", err)
			}
		}
	}
}

// ErrFinished is returned by a second Finish of the same recording, along with its Result.
var ErrFinished = errors.New("recording: already finished")

// Finish ends the recording at end (normally time.Now() when the call ends): it mixes
// everything up to end, flushes the encoder, fsyncs and closes the file and renames it from
// .part to .mp3. The file plays for end-start, rounded up to the next MP3 frame (72 ms),
// unless the mixer had already gone past end. Audio arriving after Finish is ignored. If
// writing failed mid-call, Finish keeps whatever complete frames reached the disk (as
// Recover does) and returns that Result together with the error. Later calls return the
// same Result and ErrFinished.
func (rec *Recording) Finish(end time.Time) (Result, error) {
	first := false
	rec.finish.Do(func() {
		first = true
		rec.res, rec.err = rec.doFinish(end)
	})
	if !first {
		return rec.res, ErrFinished
	}
	return rec.res, rec.err
}

func (rec *Recording) doFinish(end time.Time) (Result, error) {
	defer rec.r.release(rec.id)
	rec.mu.Lock()
	rec.closed = true
	dropped := rec.dropped
	rec.mu.Unlock()
	if rec.loop != nil {
		rec.loop.unschedule(rec)
	}

	rec.mixTo(rec.pos(end))
	err := rec.werr
	if cerr := rec.enc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = rec.f.Sync()
	}
	if cerr := rec.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if dropped > 0 {
		rec.log.Warn("recording dropped audio", "id", rec.id, "dropped", audio.Duration(int(dropped)))
	}
	if err != nil {
		// Keep what reached the disk, cut at a frame boundary.
		res, rerr := Recover(rec.part)
		return res, errors.Join(fmt.Errorf("recording %s: %w", rec.id, err), rerr)
	}
	final := strings.TrimSuffix(rec.part, ".part")
	if err := os.Rename(rec.part, final); err != nil {
		return Result{}, fmt.Errorf("recording: %w", err)
	}
	syncDir(filepath.Dir(final))
	d, err := MP3Duration(final)
	if err != nil && !errors.Is(err, ErrNoFrames) {
		return Result{}, err
	}
	res := Result{Path: final, Duration: d, Bytes: rec.enc.Bytes(), Channels: rec.channels}
	rec.log.Info("recording finished", "id", rec.id, "file", final, "duration", d, "bytes", res.Bytes)
	return res, nil
}

// syncDir makes a rename in dir durable; failures are ignored (not every file system
// supports it, and the data itself is already synced).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
