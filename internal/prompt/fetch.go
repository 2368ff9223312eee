package prompt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/outbound"
)

// MaxFileBytes is the largest audio file a <url> may serve (spec: 10 MB).
const MaxFileBytes = 10 << 20

const maxRedirects = 5

// audioExts are the file types a <url> may name, by the extension of its path.
var audioExts = map[string]bool{".mp3": true, ".wav": true, ".gsm": true}

// checkURL validates a <url> element's content and returns its lower-case extension.
func checkURL(raw string) (ext string, err error) {
	if raw == "" {
		return "", fail(StatusInvalidURL, errors.New("empty <url>"))
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return "", fail(StatusInvalidURL, fmt.Errorf("url %q contains spaces", raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fail(StatusInvalidURL, err)
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return "", fail(StatusInvalidURL, fmt.Errorf("url %q: only http and https are supported", raw))
	}
	if u.Hostname() == "" {
		return "", fail(StatusInvalidURL, fmt.Errorf("url %q has no host", raw))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fail(StatusInvalidURL, fmt.Errorf("url %q: bad port", raw))
		}
	}
	ext = strings.ToLower(path.Ext(u.Path))
	if !audioExts[ext] {
		return "", fail(StatusInvalidFileFormat, fmt.Errorf("url %q: the file name must end in .mp3, .wav or .gsm", raw))
	}
	return ext, nil
}

// urlMeta is what is remembered about a cached download.
type urlMeta struct {
	URL          string    `json:"url"`
	LastModified string    `json:"last_modified"`
	Stored       time.Time `json:"stored"`
}

// fetch returns the audio of a <url> segment as 8 kHz PCM, revalidating a cached copy with
// If-Modified-Since. It runs inside p.flight (one download per URL at a time) under its own
// total deadline.
func (p *Prompter) fetch(rawURL, ext string) ([]int16, error) {
	ctx, cancel := context.WithTimeout(p.base, p.opts.DownloadTimeout)
	defer cancel()

	// rcancel lets the body's idle timer cancel the request with a cause.
	rctx, rcancel := context.WithCancelCause(ctx)
	defer rcancel(nil)
	meta, cached := p.cachedURL(rawURL)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fail(StatusInvalidURL, err)
	}
	req.Header.Set("User-Agent", "ivrd")
	if cached != nil {
		req.Header.Set("If-Modified-Since", meta.LastModified)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if cached != nil {
			p.log.Warn("prompt: revalidation failed, playing the cached copy", "url", rawURL, "err", err)
			return cached, nil
		}
		return nil, fail(StatusDownloadFailed, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotModified && cached != nil:
		p.log.Debug("prompt: url not modified", "url", rawURL)
		return cached, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, fail(StatusDownloadFailed, fmt.Errorf("GET %s: %s", rawURL, resp.Status))
	}
	if resp.ContentLength > MaxFileBytes {
		return nil, fail(StatusInvalidFileSize, fmt.Errorf("GET %s: Content-Length %d", rawURL, resp.ContentLength))
	}
	body, err := readLimited(resp.Body, MaxFileBytes, p.opts.ReadTimeout, rcancel)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fail(StatusInvalidFileSize, fmt.Errorf("GET %s: %w", rawURL, err))
		}
		if c := context.Cause(rctx); c != nil {
			err = c
		}
		return nil, fail(StatusDownloadFailed, fmt.Errorf("GET %s: %w", rawURL, err))
	}
	pcm, err := decodeFile(body, ext)
	if err != nil {
		return nil, fail(StatusInvalidFileFormat, fmt.Errorf("%s: %w", rawURL, err))
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if _, err := http.ParseTime(lm); err == nil {
			p.storeURL(urlMeta{URL: rawURL, LastModified: lm, Stored: time.Now()}, pcm)
			return pcm, nil
		}
	}
	p.forgetURL(rawURL)
	return pcm, nil
}

// cachedURL returns the cached copy of rawURL and its metadata, or nil.
func (p *Prompter) cachedURL(rawURL string) (urlMeta, []int16) {
	p.urlMu.Lock()
	meta, ok := p.urlMetas[rawURL]
	p.urlMu.Unlock()
	if ok {
		if pcm, ok := p.mem.get(urlKey(meta)); ok {
			return meta, pcm
		}
	}
	var dm urlMeta
	if !p.disk.getMeta("url", rawURL, &dm) || dm.URL != rawURL || dm.LastModified == "" {
		return urlMeta{}, nil
	}
	pcm, ok := p.disk.get("url", rawURL)
	if !ok {
		return urlMeta{}, nil
	}
	p.rememberURL(dm, pcm)
	return dm, pcm
}

func (p *Prompter) storeURL(meta urlMeta, pcm []int16) {
	p.rememberURL(meta, pcm)
	p.disk.put("url", meta.URL, pcm)
	p.disk.putMeta("url", meta.URL, meta)
}

func (p *Prompter) rememberURL(meta urlMeta, pcm []int16) {
	p.urlMu.Lock()
	if len(p.urlMetas) >= 10000 { // crude bound; the PCM itself is in the LRU
		clear(p.urlMetas)
	}
	p.urlMetas[meta.URL] = meta
	p.urlMu.Unlock()
	p.mem.put(urlKey(meta), pcm)
}

func (p *Prompter) forgetURL(rawURL string) {
	p.urlMu.Lock()
	delete(p.urlMetas, rawURL)
	p.urlMu.Unlock()
	p.disk.remove("url", rawURL)
}

func urlKey(m urlMeta) string { return "url|" + m.LastModified + "|" + m.URL }

var errTooLarge = fmt.Errorf("file larger than %d bytes", MaxFileBytes)

// readLimited reads r to the end, failing with errTooLarge past max bytes, whatever the
// server announced, and cancelling (via cancel) when no byte arrives for idle.
func readLimited(r io.Reader, max int64, idle time.Duration, cancel context.CancelCauseFunc) ([]byte, error) {
	stalled := time.AfterFunc(idle, func() { cancel(fmt.Errorf("no data for %v", idle)) })
	defer stalled.Stop()
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			if int64(len(buf)+n) > max {
				return nil, errTooLarge
			}
			buf = append(buf, chunk[:n]...)
			stalled.Reset(idle)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// newHTTPClient builds the download client: connect and header timeouts, at most
// maxRedirects redirects, http/https only, every connection (each redirect hop's too) checked
// against policy when it is dialled. A caller-supplied client is copied and keeps its
// transport; its CheckRedirect is used if set.
func newHTTPClient(base *http.Client, policy *outbound.Policy, connect, read time.Duration) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	} else {
		c.Transport = policy.Transport(&http.Transport{
			TLSHandshakeTimeout:   connect,
			ResponseHeaderTimeout: read,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}, connect)
	}
	if c.CheckRedirect == nil {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if s := req.URL.Scheme; s != "http" && s != "https" {
				return fmt.Errorf("redirect to %s: scheme not allowed", req.URL)
			}
			return nil
		}
	}
	return &c
}
