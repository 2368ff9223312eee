package blob

import (
	"context"
	"fmt"
	"time"
)

// MaxPresignTTL is the longest lifetime of a presigned S3 URL (signature version 4).
const MaxPresignTTL = 7 * 24 * time.Hour

// Presigner makes presigned GET URLs of an S3 store's blobs: they point at the object store
// itself, which checks their signature and expiry (an app downloads without ivrd in the way).
type Presigner struct {
	s   *S3
	ttl time.Duration
}

// Presigner returns a Presigner whose URLs live ttl (1 s to MaxPresignTTL). Signing needs no
// request: the region is configured.
func (s *S3) Presigner(ttl time.Duration) (Presigner, error) {
	if ttl < time.Second || ttl > MaxPresignTTL {
		return Presigner{}, fmt.Errorf("blob: presigned URLs live 1s to %v, not %v", MaxPresignTTL, ttl)
	}
	p := Presigner{s: s, ttl: ttl}
	if _, err := p.presign("check.mp3"); err != nil { // the settings sign
		return Presigner{}, err
	}
	return p, nil
}

// URL returns the presigned GET URL of key, valid for the TTL from the current time (S3
// signs with its own clock; now is not used). It is "" only for a key that cannot be signed
// (not a ValidKey).
func (p Presigner) URL(key string, _ time.Time) string {
	u, err := p.presign(key)
	if err != nil {
		p.s.log.Error("blob: presign", "key", key, "err", err)
		return ""
	}
	return u
}

func (p Presigner) presign(key string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	u, err := p.s.c.PresignedGetObject(context.Background(), p.s.bucket, key, p.ttl, nil)
	if err != nil {
		return "", fmt.Errorf("blob: presign %s: %w", key, err)
	}
	return u.String(), nil
}
