// Package prompt turns a block's msg into 8 kHz mono PCM: it parses the <speech>/<url>
// markup, speaks text with espeak-ng (run as a program; it is GPL), downloads and decodes
// users' MP3/WAV/GSM files, resamples everything to audio.Rate with libsoxr, and caches
// both speech and downloads in memory and on disk.
package prompt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/outbound"
)

// Options configure a Prompter. Zero values take the defaults noted.
type Options struct {
	CacheDir   string       // disk cache root; empty: memory only
	Espeak     string       // espeak-ng program; default "espeak-ng"
	Log        *slog.Logger // default slog.Default()
	HTTPClient *http.Client // for <url> downloads; default: own client with the timeouts below
	// Outbound is where the default client's downloads (and their redirects) may connect; nil:
	// anywhere. Environment proxies are never used.
	Outbound      *outbound.Policy
	PrepareBudget time.Duration // how long Prepare waits for synthesis/downloads; default 10 s

	MemoryBytes     int64         // in-memory PCM cache bound; default 64 MiB
	DiskBytes       int64         // on-disk cache bound; default 1 GiB
	ConnectTimeout  time.Duration // TCP/TLS connect; default 5 s (ignored with HTTPClient)
	ReadTimeout     time.Duration // response headers, and any pause in the body; default 10 s
	DownloadTimeout time.Duration // a whole download, which continues in the background past PrepareBudget so a retry finds it; default 60 s
	SynthTimeout    time.Duration // one espeak-ng run; default 30 s
}

// Prompter prepares msgs. It is safe for concurrent use.
type Prompter struct {
	opts      Options
	espeak    string
	log       *slog.Logger
	client    *http.Client
	mem       *memCache
	disk      *diskCache // nil without CacheDir
	flight    flight
	espeakSem semaphore

	base     context.Context // parent of all background work; Close cancels it
	stop     context.CancelFunc
	urlMu    sync.Mutex
	urlMetas map[string]urlMeta // URL -> last download's metadata (memory side of the URL cache)
}

// New returns a Prompter. It fails only if CacheDir cannot be created; a missing espeak-ng is
// logged, and text then fails with error_msg_cannot_convert_text.
func New(opts Options) (*Prompter, error) {
	if opts.Espeak == "" {
		opts.Espeak = "espeak-ng"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	setDefault(&opts.PrepareBudget, 10*time.Second)
	setDefault(&opts.ConnectTimeout, 5*time.Second)
	setDefault(&opts.ReadTimeout, 10*time.Second)
	setDefault(&opts.DownloadTimeout, 60*time.Second)
	setDefault(&opts.SynthTimeout, 30*time.Second)
	if opts.MemoryBytes <= 0 {
		opts.MemoryBytes = 64 << 20
	}
	if opts.DiskBytes <= 0 {
		opts.DiskBytes = 1 << 30
	}
	p := &Prompter{
		opts:      opts,
		espeak:    opts.Espeak,
		log:       opts.Log,
		client:    newHTTPClient(opts.HTTPClient, opts.Outbound, opts.ConnectTimeout, opts.ReadTimeout),
		mem:       newMemCache(opts.MemoryBytes),
		espeakSem: make(semaphore, max(2, runtime.NumCPU())),
		urlMetas:  map[string]urlMeta{},
	}
	p.base, p.stop = context.WithCancel(context.Background())
	if path, err := exec.LookPath(opts.Espeak); err != nil {
		p.log.Error("prompt: espeak-ng not found; text-to-speech will fail", "espeak", opts.Espeak, "err", err)
	} else {
		p.espeak = path
	}
	if opts.CacheDir != "" {
		d, err := newDiskCache(opts.CacheDir, opts.DiskBytes, p.log)
		if err != nil {
			return nil, err
		}
		p.disk = d
	}
	return p, nil
}

// Close cancels synthesis and downloads still running in the background. Prepare calls
// made after Close fail. It is optional: a Prompter holds no other resources.
func (p *Prompter) Close() { p.stop() }

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// job is one segment ready to run: speech with a resolved voice, or a URL with its type.
type job struct {
	seg   Segment
	voice voice
	ext   string
}

// plan parses msg and resolves every segment, failing with the first problem in order.
func plan(msg string) ([]job, error) {
	segs, err := Parse(msg)
	if err != nil {
		return nil, err
	}
	jobs := make([]job, len(segs))
	for i, s := range segs {
		jobs[i].seg = s
		switch s.Kind {
		case KindText:
			jobs[i].voice, err = resolveVoice(s.Language, s.Gender)
		case KindURL:
			jobs[i].ext, err = checkURL(s.URL)
		}
		if err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

// Check validates msg without slow work: markup, languages, genders, URL form and file
// extension. It does not check the length (the API does, per block). Errors are *Error.
func (p *Prompter) Check(msg string) error {
	_, err := plan(msg)
	return err
}

// Prepare returns the whole msg as 8 kHz mono PCM. The result is read-only: a msg of one
// segment is the cached audio itself, shared with every other call playing it (a copy per
// request cost each call its prompt's size in memory while it played). Segments
// are synthesized and downloaded concurrently, each at most once at a time across callers,
// and served from cache when possible. Prepare waits at most PrepareBudget: past it, the
// first unfinished segment in order fails the msg with error_msg_download_failed (a URL) or
// error_msg_cannot_convert_text (text); work in progress continues in the background and
// lands in the cache. An empty msg is empty PCM. Errors are *Error.
func (p *Prompter) Prepare(ctx context.Context, msg string) ([]int16, error) {
	jobs, err := plan(msg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.PrepareBudget)
	defer cancel()
	type result struct {
		pcm []int16
		err error
	}
	results := make([]result, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			r := &results[i]
			if j.seg.Kind == KindURL {
				r.pcm, r.err = p.flight.do(ctx, "url|"+j.seg.URL, func() ([]int16, error) { return p.fetch(j.seg.URL, j.ext) })
				r.err = asError(r.err, StatusDownloadFailed)
			} else {
				r.pcm, r.err = p.speech(ctx, j.seg.Text, j.voice)
				r.err = asError(r.err, StatusCannotConvertText)
			}
		})
	}
	wg.Wait()
	total := 0
	for _, r := range results {
		if r.err != nil {
			p.log.Info("prompt: msg failed", "status", StatusOf(r.err), "err", r.err)
			return nil, r.err
		}
		total += len(r.pcm)
	}
	if len(results) == 1 && len(results[0].pcm) > 0 {
		return results[0].pcm, nil
	}
	out := make([]int16, 0, total)
	for _, r := range results {
		out = append(out, r.pcm...)
	}
	return out, nil
}

// speech returns text spoken with v, from cache or synthesized once across callers.
func (p *Prompter) speech(ctx context.Context, text string, v voice) ([]int16, error) {
	key := ttsKeyVersion + "|" + v.Name + "|" + text
	if pcm, ok := p.mem.get(key); ok {
		return pcm, nil
	}
	return p.flight.do(ctx, "tts|"+key, func() ([]int16, error) {
		if pcm, ok := p.mem.get(key); ok {
			return pcm, nil
		}
		if pcm, ok := p.disk.get("tts", key); ok {
			p.mem.put(key, pcm)
			return pcm, nil
		}
		sctx, cancel := context.WithTimeout(p.base, p.opts.SynthTimeout)
		defer cancel()
		start := time.Now()
		pcm, err := p.synthesize(sctx, text, v)
		if err != nil {
			return nil, fail(StatusCannotConvertText, err)
		}
		p.log.Debug("prompt: synthesized", "voice", v.Name, "chars", len(text),
			"audio", time.Duration(len(pcm))*time.Second/8000, "took", time.Since(start))
		p.mem.put(key, pcm)
		p.disk.put("tts", key, pcm)
		return pcm, nil
	})
}

// asError makes err an *Error, using status for anything that is not one already
// (deadlines and cancellation included).
func asError(err error, status string) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("not ready within the prepare budget: %w", err)
	}
	return fail(status, err)
}
