// Package recording records live calls (the Monitor block) to MP3 files.
//
// A Recording receives both directions of a call through audio.Tap, places every packet on
// the wall-clock timeline that starts when the recording starts, mixes the two directions to
// mono (or, Dual, keeps them apart as the left and right channels of a stereo stream),
// encodes them with libmp3lame while the call runs and appends the MP3 bytes to
// <dir>/<id>.mp3.part a few times a second. Finish renames the file to <id>.mp3. A process
// that dies mid-call leaves the .part file holding everything up to about half a second
// before the crash (less than a second is lost); Recover (or Recorder.RecoverAll at the next
// start) cuts its trailing partial frame and renames it.
//
// Timeline: sample k of the decoded file is wall-clock time start+k/8000 s, for every decoder
// (ffmpeg, mpg123, minimp3), and the file plays for end-start rounded up to one 72 ms frame.
// The price is the first audio.MP3EncoderDelay samples (138 ms) after start: an MP3 without
// a LAME/Xing tag cannot carry them (decoders play LAME's pre-roll in their place), so the
// recorder drops them rather than shift the whole call 138 ms late.
//
// Pause and Resume take parts of the timeline out: silence in the file, or left out of it.
// They apply where the mixer writes the file, so no audio of a paused part reaches the disk,
// and a file a crash leaves behind has none either.
package recording

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// PartSuffix ends the name of a recording still being written (or left by a crash).
const PartSuffix = ".mp3.part"

// Defaults for the mixer; see WithMixInterval and WithMixLag. The lag outlasts the longest
// stall after which ivrd's RTP sender still catches up in a burst (200 ms; after a longer
// one it restarts its schedule, and the caller hears the gap too): a burst stamped when it
// is sent then closes the gap it follows before the gap is mixed as silence.
const (
	DefaultMixInterval = 250 * time.Millisecond
	DefaultMixLag      = 250 * time.Millisecond
)

// Recorder makes Recordings in one directory.
type Recorder struct {
	dir      string
	kbps     int
	log      *slog.Logger
	interval time.Duration
	lag      time.Duration
	manual   bool // tests: no mix loop, the test calls mixTo itself
	loops    []*mixLoop
	nextLoop atomic.Uint32

	mu     sync.Mutex
	active map[string]bool // ids being recorded by this process
}

// Option configures a Recorder.
type Option func(*Recorder)

// WithBitrate sets the MP3 bit rate in kbit/s (8..64 in steps of 8; default 32).
func WithBitrate(kbps int) Option { return func(r *Recorder) { r.kbps = kbps } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(r *Recorder) {
		if l != nil {
			r.log = l
		}
	}
}

// WithMixInterval sets how often the mixer encodes and writes (default 250 ms). Together with
// the lag it bounds what a crash loses and how much audio each call buffers.
func WithMixInterval(d time.Duration) Option { return func(r *Recorder) { r.interval = d } }

// WithMixLag sets how far behind the wall clock the mixer stays so that late packets still
// land in place (default 250 ms).
func WithMixLag(d time.Duration) Option { return func(r *Recorder) { r.lag = d } }

// NewRecorder returns a Recorder writing into dir, which it creates if needed.
func NewRecorder(dir string, opts ...Option) (*Recorder, error) {
	r := &Recorder{
		dir:      dir,
		kbps:     audio.DefaultMP3Kbps,
		log:      slog.Default(),
		interval: DefaultMixInterval,
		lag:      DefaultMixLag,
		active:   map[string]bool{},
	}
	for _, o := range opts {
		o(r)
	}
	if r.interval <= 0 || r.lag < 0 {
		return nil, fmt.Errorf("recording: bad mixer timing (interval %v, lag %v)", r.interval, r.lag)
	}
	if r.interval+r.lag+maxLead+100*time.Millisecond > audio.Duration(ringSize) {
		return nil, fmt.Errorf("recording: mix interval %v + lag %v exceed the %v buffer", r.interval, r.lag, audio.Duration(ringSize))
	}
	r.loops = newMixLoops(r.interval, r.lag)
	// Check the bit rate now rather than at the first call.
	enc, err := audio.NewMP3Encoder(io.Discard, r.kbps)
	if err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	return r, nil
}

// Dir is the directory the recorder writes into.
func (r *Recorder) Dir() string { return r.dir }

// PartPath is where recording id is written while the call runs.
func (r *Recorder) PartPath(id string) string { return filepath.Join(r.dir, id+PartSuffix) }

// Path is where recording id ends up once finished or recovered.
func (r *Recorder) Path(id string) string { return filepath.Join(r.dir, id+".mp3") }

// validID accepts ids that are plain file names.
func validID(id string) error {
	if id == "" || len(id) > 200 || id[0] == '.' || strings.ContainsAny(id, "/\\\x00") {
		return fmt.Errorf("recording: invalid id %q", id)
	}
	return nil
}

// Start begins recording id: the file's time zero is start (normally time.Now()), and the
// file is created as PartPath(id). channels is Mono or Dual. It refuses an id whose .part or
// .mp3 already exists.
func (r *Recorder) Start(id string, start time.Time, channels int) (*Recording, error) {
	return r.StartLogged(id, start, channels, r.log)
}

// StartLogged is Start with the recording's lines logged to log (a call's, which names the
// call's session).
func (r *Recorder) StartLogged(id string, start time.Time, channels int, log *slog.Logger) (*Recording, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if channels != Mono && channels != Dual {
		return nil, fmt.Errorf("recording: %d channels (want Mono or Dual)", channels)
	}
	if _, err := os.Stat(r.Path(id)); err == nil {
		return nil, fmt.Errorf("recording: %s: %w", r.Path(id), fs.ErrExist)
	}
	r.mu.Lock()
	if r.active[id] {
		r.mu.Unlock()
		return nil, fmt.Errorf("recording: %s already recording: %w", id, fs.ErrExist)
	}
	r.active[id] = true
	r.mu.Unlock()

	rec, err := r.start(id, start, channels, log)
	if err != nil {
		r.release(id)
		return nil, err
	}
	return rec, nil
}

func (r *Recorder) start(id string, start time.Time, channels int, log *slog.Logger) (*Recording, error) {
	part := r.PartPath(id)
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	enc, err := audio.NewAsyncMP3Encoder(f, r.kbps, channels)
	if err != nil {
		f.Close()
		os.Remove(part)
		return nil, err
	}
	rec := &Recording{
		r:        r,
		log:      log,
		id:       id,
		start:    start,
		part:     part,
		f:        f,
		enc:      enc,
		channels: channels,
		trim:     audio.MP3EncoderDelay,
	}
	if !r.manual {
		rec.loop = r.loops[int(r.nextLoop.Add(1))%len(r.loops)]
		rec.loop.schedule(rec)
	}
	log.Debug("recording started", "id", id, "file", part)
	return rec, nil
}

func (r *Recorder) release(id string) {
	r.mu.Lock()
	delete(r.active, id)
	r.mu.Unlock()
}

// Pending lists the ids whose .part file is in the directory but which this Recorder is not
// recording: calls that were cut off by a crash. The ids are sorted.
func (r *Recorder) Pending() ([]string, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), PartSuffix)
		if !ok || !e.Type().IsRegular() || r.active[id] || validID(id) != nil {
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// RecoverAll runs Recover on every Pending recording and returns the results by id. It goes
// on after a failure and returns the failures joined.
func (r *Recorder) RecoverAll() (map[string]Result, error) {
	ids, err := r.Pending()
	if err != nil {
		return nil, err
	}
	out := make(map[string]Result, len(ids))
	var errs []error
	for _, id := range ids {
		res, err := Recover(r.PartPath(id))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.log.Info("recording recovered", "id", id, "file", res.Path, "duration", res.Duration, "bytes", res.Bytes)
		out[id] = res
	}
	return out, errors.Join(errs...)
}
