package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config configures an S3 store.
type S3Config struct {
	Endpoint     string // http(s)://host[:port]
	Region       string // signed for; never looked up
	Bucket       string // must exist
	AccessKey    string
	SecretKey    string
	SessionToken string // optional (temporary credentials)
	Log          *slog.Logger
}

// S3 keeps blobs as objects of one bucket of an S3-compatible object store (minio-go):
//
//	<key>                      a stored blob, e.g. rec-….mp3
//	pieces/<key>/<offset>      a piece of a blob being written (see PutPiece)
//
// Every request has a deadline; minio-go retries the ones that fail on the way.
type S3 struct {
	c      *minio.Client
	bucket string
	log    *slog.Logger
	tr     *http.Transport
}

var _ Store = (*S3)(nil)

// Timeouts of the requests to the object store.
const (
	s3CheckTimeout = 10 * time.Second // the bucket check at start
	s3SmallTimeout = 30 * time.Second // a piece, a listing, a delete
	s3PutTimeout   = time.Minute      // a whole blob, plus s3PutPerMiB per MiB
	s3PutPerMiB    = 10 * time.Second
	s3Retries      = 4
)

// NewS3 connects to the store and checks that the bucket exists and the credentials open it.
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("blob: s3 endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// ivrd's own transport: no environment proxies, bounded dials and waits.
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: s3SmallTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		DisableCompression:    true,
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:    u.Scheme == "https",
		Region:    cfg.Region,
		Transport: tr,
		// A request that fails on the way is tried again a few times (about 3 s in all):
		// enough for a blip, short enough that a download fails fast while the store is down.
		MaxRetries: s3Retries,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	s := &S3{c: c, bucket: cfg.Bucket, log: log, tr: tr}
	ctx, cancel := context.WithTimeout(context.Background(), s3CheckTimeout)
	defer cancel()
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("blob: s3 bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("blob: s3 bucket %s does not exist at %s", cfg.Bucket, cfg.Endpoint)
	}
	return s, nil
}

// Close releases the store's idle connections.
func (s *S3) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// Bucket is the bucket's name.
func (s *S3) Bucket() string { return s.bucket }

// PutFile uploads the file src as key (Content-Type by its extension), then removes src.
func (s *S3) PutFile(key, src string) error {
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("blob: %s is not a regular file", src)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s3PutTimeout+time.Duration(st.Size()>>20)*s3PutPerMiB)
	defer cancel()
	if _, err := s.c.PutObject(ctx, s.bucket, key, f, st.Size(), minio.PutObjectOptions{ContentType: ContentType(key)}); err != nil {
		return fmt.Errorf("%w: put %s: %w", ErrUnavailable, key, err)
	}
	f.Close()
	if err := os.Remove(src); err != nil {
		s.log.Warn("blob: stored, but the local file stays", "key", key, "file", src, "err", err)
	}
	return nil
}

// Open opens key for reading; reads and seeks fetch it (by range) as they go, within ctx.
func (s *S3) Open(ctx context.Context, key string) (*Object, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("%w: %w: %q", ErrNotFound, ErrBadKey, key)
	}
	o, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail("open", key, err)
	}
	info, err := o.Stat()
	if err != nil {
		o.Close()
		return nil, s.fail("open", key, err)
	}
	return &Object{ReadSeekCloser: o, Size: info.Size, ModTime: info.LastModified}, nil
}

// Delete removes key; a key that is not stored is no error.
func (s *S3) Delete(key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s3SmallTimeout)
	defer cancel()
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return s.fail("delete", key, err)
	}
	return nil
}

// fail wraps a request's error: ErrNotFound for a missing object, else ErrUnavailable.
func (s *S3) fail(op, name string, err error) error {
	if r := minio.ToErrorResponse(err); r.Code == minio.NoSuchKey || (r.StatusCode == http.StatusNotFound && r.Code != minio.NoSuchBucket) {
		return fmt.Errorf("blob %s: %w", name, ErrNotFound)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("blob: %s %s: %w", op, name, err)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, op, name, err)
}
