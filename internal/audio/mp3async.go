package audio

/*
#cgo LDFLAGS: -lmp3lame -lpthread
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <lame/lame.h>
#include "lame_config.h"

enum {
	GRANULE = 576,        // samples per channel in an MPEG-2.5 Layer III frame
	SEGMENT_FRAMES = 5,   // frames a segment writes at least (see segmentFrames)
	LAME_SLOTS = 4,       // LAME states a thread keeps, one per bit rate and channel count
	LAME_RECYCLE = 50000, // frames after which a LAME state is replaced (its counters stay small)
	ERR_LAME = -1,        // LAME failed
	ERR_FRAMES = -2,      // LAME's output did not line up with the segment's frames
};

// A segment starts more than three frames after the one before it starts, so a LAME state
// that missed a segment of a stream can never take the next for its continuation (see
// ivrd_encode_job).
_Static_assert(SEGMENT_FRAMES > 3, "segments must move on by more than their overlap");

// A segment: stream samples [GRANULE*at, GRANULE*at + n) of one recording, interleaved when
// stereo, to be encoded by whichever thread takes it. Stream frame f is the frame that holds
// samples [GRANULE*(f-1), GRANULE*f) (frame 0 is LAME's pre-roll, before sample 0). The
// thread writes frames keep_from..keep_to (keep_to < 0: to the end, flushing LAME) and no
// others. Negative stream samples are silence before the start.
typedef struct ivrd_job {
	struct ivrd_job *next;
	int n, cap;          // samples per channel held, and room for
	int flush;           // the stream's last segment
	long long at;        // stream frame of pcm[0]
	long long keep_from, keep_to;
	short pcm[];
} ivrd_job;

// A recording's stream: the segment being filled by the writer, the segments waiting for
// a thread, and the file. A thread holds it while it is on the ready list or being worked on
// (queued), so its segments are encoded in order and never two at a time.
typedef struct ivrd_aenc {
	unsigned long long id; // unique in the process
	int fd;
	int channels; // 1, or 2: samples are interleaved left, right
	int kbps;     // of the whole stream
	int frame_bytes;
	ivrd_job *cur;         // being filled; touched only by the writer
	long long next_frame;  // the first stream frame not yet given to a segment; writer only
	int wrote;             // the writer has given samples; writer only
	pthread_mutex_t mu;
	pthread_cond_t cond; // a segment finished, or the stream left the threads
	ivrd_job *head, *tail;
	int pending; // segments queued or being encoded
	int queued;  // on the ready list or held by a thread
	int err;     // first failure: an errno, ERR_LAME or ERR_FRAMES
	long long bytes;
	struct ivrd_aenc *next_ready;
} ivrd_aenc;

static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static ivrd_aenc *ready_head, *ready_tail;
static int workers;
static long queued_jobs; // segments queued or being encoded, over every stream (atomic)

static long ivrd_queued_jobs(void) { return __atomic_load_n(&queued_jobs, __ATOMIC_RELAXED); }

static int ivrd_write_all(int fd, const unsigned char *b, int n) {
	while (n > 0) {
		ssize_t w = write(fd, b, (size_t)n);
		if (w < 0) {
			if (errno == EINTR) continue;
			return errno;
		}
		b += w;
		n -= (int)w;
	}
	return 0;
}

// A thread's LAME state for one bit rate and channel count, shared by every stream of that
// kind: fed counts the frames of samples it has been given (always whole frames), out the
// frames it has put out. stream is the stream it was last given, end the stream frame just
// past the samples it was given of it.
typedef struct {
	lame_global_flags *gf;
	int kbps, channels;
	long long fed, out;
	unsigned long long stream;
	long long end;
	unsigned long used; // for replacing the least recently used slot
} ivrd_lame;

static __thread ivrd_lame lames[LAME_SLOTS];
static __thread unsigned long lame_clock;

static ivrd_lame *ivrd_lame_for(int kbps, int channels) {
	ivrd_lame *l = NULL;
	for (int i = 0; i < LAME_SLOTS; i++) {
		if (lames[i].gf && lames[i].kbps == kbps && lames[i].channels == channels) {
			l = &lames[i];
			break;
		}
	}
	if (l == NULL) {
		l = &lames[0];
		for (int i = 0; i < LAME_SLOTS; i++) {
			if (lames[i].gf == NULL) {
				l = &lames[i];
				break;
			}
			if (lames[i].used < l->used) l = &lames[i];
		}
		if (l->gf) lame_close(l->gf);
		int rate = 0;
		l->gf = ivrd_lame_new(8000, kbps, channels, 0, &rate);
		if (l->gf && rate != 8000) {
			lame_close(l->gf);
			l->gf = NULL;
		}
		if (l->gf == NULL) return NULL;
		l->kbps = kbps;
		l->channels = channels;
		l->fed = l->out = 0;
		l->stream = 0;
	}
	l->used = ++lame_clock;
	return l;
}

// ivrd_encode_job encodes j on one of the thread's LAME states and writes the frames it keeps
// to e's file, adding their size to *nb. A LAME state that was used for other streams still
// holds their last samples: the frames it makes of them, and of the first GRANULE samples
// of j (whose analysis reaches back into those), are before keep_from and left out. From
// there on its frames are those a LAME state given the whole stream would have made, bit for
// bit: without the bit reservoir a frame depends on the samples only. A LAME state whose
// last segment was the one before j of the same stream (the thread took several of the
// stream's segments in a row: the threads are behind) is in step already: it is given only
// the samples it has not had, and makes no frame that is left out.
static int ivrd_encode_job(ivrd_aenc *e, ivrd_job *j, long long *nb) {
	static __thread unsigned char out[1152 * 2 * 5 / 4 + 7200];
	static __thread unsigned char acc[1 << 16];
	ivrd_lame *l = ivrd_lame_for(e->kbps, e->channels);
	if (l == NULL) return ERR_LAME;
	int skip = 0; // samples per channel of j the LAME state has had
	if (l->stream == e->id && l->end >= j->at && (l->end - j->at) * GRANULE <= j->n) {
		skip = (int)(l->end - j->at) * GRANULE;
	}
	long long base = j->at + skip / GRANULE - l->fed; // stream frame = LAME's frame + base
	long long next = j->keep_from;
	int ch = e->channels, fb = e->frame_bytes, used = 0, err = 0;
	for (int off = skip; !err && (off < j->n || (j->flush && off >= j->n)); off += 1152) {
		int got;
		if (off >= j->n) {
			got = lame_encode_flush(l->gf, out, (int)sizeof out);
		} else {
			int k = j->n - off < 1152 ? j->n - off : 1152;
			got = ch == 2
				? lame_encode_buffer_interleaved(l->gf, j->pcm + 2 * off, k, out, (int)sizeof out)
				: lame_encode_buffer(l->gf, j->pcm + off, NULL, k, out, (int)sizeof out);
		}
		if (got < 0 || got % fb != 0) {
			err = ERR_LAME;
			break;
		}
		for (int i = 0; i < got / fb; i++) {
			long long f = l->out++ + base;
			if (f < next || (j->keep_to >= 0 && f > j->keep_to)) continue;
			if (f != next) {
				err = ERR_FRAMES;
				break;
			}
			if (used + fb > (int)sizeof acc) {
				if ((err = ivrd_write_all(e->fd, acc, used)) != 0) break;
				*nb += used;
				used = 0;
			}
			memcpy(acc + used, out + i * fb, (size_t)fb);
			used += fb;
			next++;
		}
		if (off >= j->n) break; // flushed
	}
	if (!err && used > 0 && (err = ivrd_write_all(e->fd, acc, used)) == 0) *nb += used;
	if (!err && j->keep_to >= 0 && next != j->keep_to + 1) err = ERR_FRAMES;
	l->fed += (j->n - skip) / GRANULE;
	l->stream = e->id;
	l->end = j->at + j->n / GRANULE;
	if (j->flush || err || j->n % GRANULE != 0 || l->out > LAME_RECYCLE) {
		lame_close(l->gf); // flushed, or no longer in step: the next segment gets a new one
		l->gf = NULL;
	}
	return err;
}

static void *ivrd_worker(void *arg) {
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)(long)arg);
	for (;;) {
		pthread_mutex_lock(&ready_mu);
		while (ready_head == NULL) pthread_cond_wait(&ready_cond, &ready_mu);
		ivrd_aenc *e = ready_head;
		ready_head = e->next_ready;
		if (ready_head == NULL) ready_tail = NULL;
		pthread_mutex_unlock(&ready_mu);
		for (;;) {
			pthread_mutex_lock(&e->mu);
			ivrd_job *j = e->head;
			if (j == NULL) {
				e->queued = 0;
				pthread_cond_broadcast(&e->cond);
				pthread_mutex_unlock(&e->mu);
				break; // e is not touched again: its owner may free it now
			}
			e->head = j->next;
			if (e->head == NULL) e->tail = NULL;
			int failed = e->err != 0;
			pthread_mutex_unlock(&e->mu);

			long long nb = 0;
			int err = failed ? 0 : ivrd_encode_job(e, j, &nb);
			free(j);

			pthread_mutex_lock(&e->mu);
			if (err && !e->err) e->err = err;
			e->bytes += nb;
			e->pending--;
			__atomic_sub_fetch(&queued_jobs, 1, __ATOMIC_RELAXED);
			pthread_cond_broadcast(&e->cond);
			pthread_mutex_unlock(&e->mu);
		}
	}
	return NULL;
}

// ivrd_start_workers starts n encoding threads at niceness nice, once per process.
static int ivrd_start_workers(int n, int nice) {
	pthread_mutex_lock(&ready_mu);
	int err = 0;
	while (workers < n) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		err = pthread_create(&t, &a, ivrd_worker, (void *)(long)nice);
		pthread_attr_destroy(&a);
		if (err) break;
		workers++;
	}
	pthread_mutex_unlock(&ready_mu);
	return workers > 0 ? 0 : err;
}

// ivrd_job_new returns an empty segment with room for cap samples per channel.
static ivrd_job *ivrd_job_new(int channels, int cap) {
	ivrd_job *j = malloc(sizeof *j + (size_t)cap * (size_t)channels * sizeof(short));
	if (j == NULL) return NULL;
	memset(j, 0, sizeof *j);
	j->cap = cap;
	return j;
}

// The first segment starts two frames before the stream, with silence: frame 0 (LAME's
// pre-roll) then has silence behind it as it would in a LAME state given the whole stream.
static unsigned long long last_stream_id; // atomic

static ivrd_aenc *ivrd_aenc_new(int fd, int kbps, int channels) {
	ivrd_aenc *e = calloc(1, sizeof *e);
	if (e == NULL) return NULL;
	e->id = __atomic_add_fetch(&last_stream_id, 1, __ATOMIC_RELAXED);
	e->cur = ivrd_job_new(channels, (SEGMENT_FRAMES + 6) * GRANULE);
	if (e->cur == NULL) {
		free(e);
		return NULL;
	}
	e->cur->at = -2;
	e->cur->n = 2 * GRANULE;
	memset(e->cur->pcm, 0, (size_t)e->cur->n * (size_t)channels * sizeof(short));
	e->fd = fd;
	e->kbps = kbps;
	e->channels = channels;
	e->frame_bytes = 72 * kbps * 1000 / 8000;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cond, NULL);
	return e;
}

// ivrd_aenc_queue hands j to the threads, first waiting while max_pending segments are
// queued (the threads are far behind). It returns the stream's first failure so far, or 0.
static int ivrd_aenc_queue(ivrd_aenc *e, ivrd_job *j, int max_pending) {
	j->next = NULL;
	pthread_mutex_lock(&e->mu);
	while (e->pending >= max_pending) pthread_cond_wait(&e->cond, &e->mu);
	if (e->tail) e->tail->next = j; else e->head = j;
	e->tail = j;
	e->pending++;
	__atomic_add_fetch(&queued_jobs, 1, __ATOMIC_RELAXED);
	int enqueue = !e->queued;
	e->queued = 1;
	int err = e->err;
	pthread_mutex_unlock(&e->mu);
	if (enqueue) {
		pthread_mutex_lock(&ready_mu);
		e->next_ready = NULL;
		if (ready_tail) ready_tail->next_ready = e; else ready_head = e;
		ready_tail = e;
		pthread_cond_signal(&ready_cond);
		pthread_mutex_unlock(&ready_mu);
	}
	return err;
}

// ivrd_aenc_write appends n samples per channel to the segment being filled and, once it
// holds SEGMENT_FRAMES frames that can be encoded (LAME puts a frame out when it has the
// next 800 samples or so: the last two whole frames of a segment cannot be), hands it to the
// threads. The next segment starts with the last three whole frames of this one: the two
// this one cannot put out, and one before them that brings the LAME state that takes the
// segment into step (with whatever that state still holds of another stream, LAME's
// output for it is left out). It returns ENOMEM, or the stream's first failure so far, or 0.
static int ivrd_aenc_write(ivrd_aenc *e, const short *pcm, int n, int max_pending) {
	ivrd_job *j = e->cur;
	int ch = e->channels;
	if (j->n + n > j->cap) {
		int cap = j->n + n + SEGMENT_FRAMES * GRANULE;
		ivrd_job *g = realloc(j, sizeof *j + (size_t)cap * (size_t)ch * sizeof(short));
		if (g == NULL) return ENOMEM;
		g->cap = cap;
		e->cur = j = g;
	}
	memcpy(j->pcm + (size_t)j->n * (size_t)ch, pcm, (size_t)n * (size_t)ch * sizeof(short));
	j->n += n;
	e->wrote = 1;
	long long k = j->n / GRANULE;         // whole frames of samples
	long long last = j->at + k - 2;       // the last frame this segment can put out
	if (last - e->next_frame + 1 < SEGMENT_FRAMES) return 0;

	ivrd_job *rest = ivrd_job_new(ch, j->cap);
	if (rest == NULL) return ENOMEM;
	rest->at = last - 1;
	int from = (int)(rest->at - j->at) * GRANULE;
	rest->n = j->n - from;
	memcpy(rest->pcm, j->pcm + (size_t)from * (size_t)ch, (size_t)rest->n * (size_t)ch * sizeof(short));
	j->n = (int)k * GRANULE;
	j->keep_from = e->next_frame;
	j->keep_to = last;
	e->next_frame = last + 1;
	e->cur = rest;
	return ivrd_aenc_queue(e, j, max_pending);
}

// ivrd_aenc_finish hands the last segment to the threads (nothing if no sample was written:
// the file stays empty) and waits until every segment is encoded and written and no thread
// holds e. *bytes receives the bytes written.
static int ivrd_aenc_finish(ivrd_aenc *e, int max_pending, long long *bytes) {
	ivrd_job *j = e->cur;
	e->cur = NULL;
	int err = 0;
	if (e->wrote) {
		j->flush = 1;
		j->keep_from = e->next_frame;
		j->keep_to = -1;
		err = ivrd_aenc_queue(e, j, max_pending);
	} else {
		free(j);
	}
	pthread_mutex_lock(&e->mu);
	while (e->pending > 0 || e->queued) pthread_cond_wait(&e->cond, &e->mu);
	if (!err) err = e->err;
	*bytes = e->bytes;
	pthread_mutex_unlock(&e->mu);
	return err;
}

static void ivrd_aenc_free(ivrd_aenc *e) {
	free(e->cur);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cond);
	free(e);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// EncoderNice is the niceness of the threads that encode for AsyncMP3Encoders. Encoding
// can wait (the recorder's buffers hold a second, and its queue more); sending a call's
// audio cannot, so when the machine is short of CPU the kernel runs the encoders last.
const EncoderNice = 5

// asyncMaxPending bounds the segments queued per encoder (each about half a second): past
// it, Write waits for the encoding threads rather than let memory grow.
const asyncMaxPending = 16

// segmentFrames is the least number of frames (72 ms each) a segment adds to the file. Each
// segment also costs LAME three frames it encodes and throws away (see AsyncMP3Encoder), so
// longer segments cost less CPU, but hold the audio longer before it reaches the file: at
// 5, with the recorder's mixer writing every 250 ms, a segment goes out every other mix
// (about 7 frames), about 60 % more encoding than one LAME state per stream, and the file
// is at most about 0.9 s behind the call.
const segmentFrames = C.SEGMENT_FRAMES

var (
	startWorkers sync.Once
	workersErr   error
)

// AsyncMP3Encoder encodes like MP3Encoder, but without the bit reservoir, on a pool of C
// threads (one per CPU, at EncoderNice) outside the Go scheduler, appending the MP3 to a
// file. Write copies the PCM and returns at once; the stream is encoded and written in order.
//
// No LAME state belongs to a stream. LAME's state is large (it allocates 384 KB and a mono
// stream at 8 kHz touches about 100 KB of it), so each thread keeps one per bit rate and
// channel count and encodes every stream's segments with it, one after another. The stream
// is cut into segments of a few frames; a segment starts three frames before the end of the
// one before it, and the frames the thread's LAME state makes of those (and of whatever it
// still held of the stream it encoded before) are left out. Without the bit reservoir an
// MPEG Layer III frame depends only on the samples, so the frames that are kept are exactly,
// bit for bit, those one LAME state given the whole stream would have made: the file has
// no seams (TestAsyncMP3EncoderMatchesContinuous). What a stream holds between segments is
// its unencoded samples, a few thousand.
//
// A goroutine that calls into LAME loses its processor for the call and then queues behind
// every other goroutine, and encoding is most of a recorded call's CPU: off the Go scheduler
// it neither delays the goroutines that send RTP nor starves behind them.
//
// Write and Close must not be called concurrently with each other.
type AsyncMP3Encoder struct {
	e        *C.ivrd_aenc
	channels int
	bytes    int64
	closed   bool
}

// NewAsyncMP3Encoder returns an encoder appending to f at kbps per channel, mono (channels 1)
// or stereo (2; see NewMP3EncoderChannels). f must stay open until Close has returned.
func NewAsyncMP3Encoder(f *os.File, kbps, channels int) (*AsyncMP3Encoder, error) {
	startWorkers.Do(func() {
		if rc := C.ivrd_start_workers(C.int(runtime.NumCPU()), C.int(EncoderNice)); rc != 0 {
			workersErr = fmt.Errorf("audio: starting encoder threads: %w", syscall.Errno(rc))
		}
	})
	if workersErr != nil {
		return nil, workersErr
	}
	total, err := streamKbps(kbps, channels)
	if err != nil {
		return nil, err
	}
	e := C.ivrd_aenc_new(C.int(f.Fd()), C.int(total), C.int(channels))
	if e == nil {
		return nil, errors.New("audio: out of memory")
	}
	return &AsyncMP3Encoder{e: e, channels: channels}, nil
}

// Write queues pcm (Rate; stereo interleaved left, right) for encoding. It returns the first
// failure of an earlier segment, if any; after a failure nothing more is written.
func (a *AsyncMP3Encoder) Write(pcm []int16) error {
	if a.closed {
		return ErrEncoderClosed
	}
	if len(pcm) == 0 {
		return nil
	}
	if len(pcm)%a.channels != 0 {
		return fmt.Errorf("audio: %d samples do not make whole stereo frames", len(pcm))
	}
	rc := C.ivrd_aenc_write(a.e, (*C.short)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)/a.channels), asyncMaxPending)
	return asyncErr(rc)
}

// Close encodes the rest of the stream, flushing LAME's last frames to the file, waits for
// every segment to be written and frees the encoder. It does not close the file. Later
// calls return nil.
func (a *AsyncMP3Encoder) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	var n C.longlong
	err := asyncErr(C.ivrd_aenc_finish(a.e, asyncMaxPending, &n))
	a.bytes = int64(n)
	C.ivrd_aenc_free(a.e)
	a.e = nil
	return err
}

// EncoderQueue returns how many segments of AsyncMP3Encoders wait for the encoding threads
// or are being encoded, over every encoder of the process.
func EncoderQueue() int { return int(C.ivrd_queued_jobs()) }

// Bytes is the number of MP3 bytes written to the file; it is final after Close.
func (a *AsyncMP3Encoder) Bytes() int64 { return a.bytes }

func asyncErr(rc C.int) error {
	switch {
	case rc == 0:
		return nil
	case rc == C.ERR_LAME:
		return errors.New("audio: lame_encode_buffer failed")
	case rc == C.ERR_FRAMES:
		return errors.New("audio: mp3 frames out of step with the stream")
	default:
		return fmt.Errorf("audio: writing mp3: %w", syscall.Errno(rc))
	}
}
