package blob

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PathPrefix is the URL path under which Handler serves blobs.
const PathPrefix = "/recordings/"

// DefaultTTL is the URL lifetime used when Signer.TTL is not positive.
const DefaultTTL = 7 * 24 * time.Hour

// Signer makes and checks expiring URLs for blobs:
//
//	BaseURL/recordings/<key>?Expires=<unix seconds>&Signature=<hex HMAC-SHA256>
//
// The MAC covers "ivrd-url-v1\n/recordings/<key>\n<Expires>": the path seen by Handler, not
// BaseURL, so URLs stay valid behind a reverse proxy that strips a prefix; and no method, so
// GET and HEAD share one URL. A URL is valid while now < Expires.
type Signer struct {
	Secret  []byte
	BaseURL string // e.g. "http://127.0.0.1:8080"; a trailing '/' is ignored
	TTL     time.Duration
}

func (s Signer) mac(key, expires string) []byte {
	m := hmac.New(sha256.New, s.Secret)
	m.Write([]byte("ivrd-url-v1\n" + PathPrefix + key + "\n" + expires))
	return m.Sum(nil)
}

// URL returns the signed URL of key, valid for TTL from now.
func (s Signer) URL(key string, now time.Time) string {
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	exp := strconv.FormatInt(now.Add(ttl).Unix(), 10)
	return strings.TrimRight(s.BaseURL, "/") + PathPrefix + url.PathEscape(key) +
		"?Expires=" + exp + "&Signature=" + hex.EncodeToString(s.mac(key, exp))
}

// Verify reports whether signature and expires, as taken from a URL's query, authorize key at
// now. expires must be canonical decimal (no sign, no leading zeros); the signature is hex.
// The MAC comparison is constant-time. An empty secret verifies nothing.
func (s Signer) Verify(key, expires, signature string, now time.Time) bool {
	if len(s.Secret) == 0 || !ValidKey(key) || len(expires) == 0 || len(expires) > 19 ||
		len(signature) != 2*sha256.Size {
		return false
	}
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || exp <= 0 || strconv.FormatInt(exp, 10) != expires {
		return false
	}
	got, err := hex.DecodeString(signature)
	if err != nil || !hmac.Equal(got, s.mac(key, expires)) {
		return false
	}
	return now.Unix() < exp
}
