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

// One block of PCM waiting to be encoded: n samples, interleaved when the encoder is stereo.
typedef struct ivrd_job {
	struct ivrd_job *next;
	int n;
	short pcm[];
} ivrd_job;

// An encoder with its queue. A worker thread owns it while it is on the ready list or being
// worked on (queued), so its jobs are encoded in order and never two at a time.
typedef struct ivrd_aenc {
	lame_global_flags *gf;
	int fd;
	int channels; // 1, or 2: jobs hold interleaved left, right samples
	pthread_mutex_t mu;
	pthread_cond_t cond; // a job finished, or the encoder left the workers
	ivrd_job *head, *tail;
	int pending; // jobs queued or being encoded
	int queued;  // on the ready list or held by a worker
	int err;     // first failure: an errno, or -1 when LAME failed
	long long bytes;
	struct ivrd_aenc *next_ready;
} ivrd_aenc;

static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static ivrd_aenc *ready_head, *ready_tail;
static int workers;
static long queued_jobs; // jobs queued or being encoded, over every encoder (atomic)

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

static void *ivrd_worker(void *arg) {
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)(long)arg);
	static __thread unsigned char out[1152 * 5 / 4 + 7200];
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

			int err = 0;
			long long nb = 0;
			int ch = e->channels, frames = j->n / ch;
			for (int off = 0; !failed && !err && off < frames; off += 1152) {
				int k = frames - off < 1152 ? frames - off : 1152;
				int got = ch == 2
					? lame_encode_buffer_interleaved(e->gf, j->pcm + 2 * off, k, out, (int)sizeof out)
					: lame_encode_buffer(e->gf, j->pcm + off, NULL, k, out, (int)sizeof out);
				if (got < 0) {
					err = -1;
					break;
				}
				err = ivrd_write_all(e->fd, out, got);
				if (!err) nb += got;
			}
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

static ivrd_aenc *ivrd_aenc_new(lame_global_flags *gf, int fd, int channels) {
	ivrd_aenc *e = calloc(1, sizeof *e);
	if (e == NULL) return NULL;
	e->gf = gf;
	e->fd = fd;
	e->channels = channels;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cond, NULL);
	return e;
}

// ivrd_aenc_submit queues a copy of pcm, first waiting while max_pending jobs are queued
// (the workers are far behind). It returns the encoder's first failure so far, or 0.
static int ivrd_aenc_submit(ivrd_aenc *e, const short *pcm, int n, int max_pending) {
	ivrd_job *j = malloc(sizeof *j + (size_t)n * sizeof(short));
	if (j == NULL) return ENOMEM;
	j->next = NULL;
	j->n = n;
	memcpy(j->pcm, pcm, (size_t)n * sizeof(short));
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

// ivrd_aenc_wait waits until every queued job is encoded and written and no worker holds e.
static int ivrd_aenc_wait(ivrd_aenc *e, long long *bytes) {
	pthread_mutex_lock(&e->mu);
	while (e->pending > 0 || e->queued) pthread_cond_wait(&e->cond, &e->mu);
	int err = e->err;
	*bytes = e->bytes;
	pthread_mutex_unlock(&e->mu);
	return err;
}

static void ivrd_aenc_free(ivrd_aenc *e) {
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

// asyncMaxPending bounds the blocks queued per encoder (each about a quarter of a second):
// past it, Write waits for the encoding threads rather than let memory grow.
const asyncMaxPending = 16

var (
	startWorkers sync.Once
	workersErr   error
)

// AsyncMP3Encoder encodes like MP3Encoder but on a pool of C threads (one per CPU, at
// EncoderNice) outside the Go scheduler, appending the MP3 to a file. Write copies the PCM
// and returns at once; blocks are encoded and written in order. A Go goroutine that calls
// into LAME loses its processor for the call and then queues behind every other goroutine,
// and encoding is most of a recorded call's CPU: off the Go scheduler it neither delays the
// goroutines that send RTP nor starves behind them.
//
// Write and Close must not be called concurrently with each other.
type AsyncMP3Encoder struct {
	e        *C.ivrd_aenc
	gf       *C.lame_global_flags
	f        *os.File
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
	gf, err := newLAME(kbps, channels)
	if err != nil {
		return nil, err
	}
	e := C.ivrd_aenc_new(gf, C.int(f.Fd()), C.int(channels))
	if e == nil {
		C.lame_close(gf)
		return nil, errors.New("audio: out of memory")
	}
	return &AsyncMP3Encoder{e: e, gf: gf, f: f, channels: channels}, nil
}

// Write queues pcm (Rate; stereo interleaved left, right) for encoding. It returns the first
// failure of an earlier block, if any; after a failure nothing more is written.
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
	rc := C.ivrd_aenc_submit(a.e, (*C.short)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)), asyncMaxPending)
	return asyncErr(rc)
}

// Close waits for the queued blocks, flushes LAME's last frames to the file and frees the
// encoder. It does not close the file. Later calls return nil.
func (a *AsyncMP3Encoder) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	var n C.longlong
	err := asyncErr(C.ivrd_aenc_wait(a.e, &n))
	a.bytes = int64(n)
	if err == nil {
		err = flushLAME(a.gf, func(b []byte) error {
			m, err := a.f.Write(b)
			a.bytes += int64(m)
			return err
		})
	}
	C.lame_close(a.gf)
	C.ivrd_aenc_free(a.e)
	a.e, a.gf = nil, nil
	return err
}

// EncoderQueue returns how many blocks given to AsyncMP3Encoders (one Write each) wait for
// the encoding threads or are being encoded, over every encoder of the process.
func EncoderQueue() int { return int(C.ivrd_queued_jobs()) }

// Bytes is the number of MP3 bytes written to the file; it is final after Close.
func (a *AsyncMP3Encoder) Bytes() int64 { return a.bytes }

func asyncErr(rc C.int) error {
	switch {
	case rc == 0:
		return nil
	case rc == -1:
		return errors.New("audio: lame_encode_buffer failed")
	default:
		return fmt.Errorf("audio: writing mp3: %w", syscall.Errno(rc))
	}
}
