package config

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ivrd/ivrd/internal/blob"
)

// Blob is where recordings are kept, from --blob: the zero value is local disk in the data
// directory; otherwise an S3-compatible object store,
//
//	s3://BUCKET?endpoint=http://HOST:PORT&region=R
//
// whose credentials come from the environment (S3AccessKeyEnv, S3SecretKeyEnv).
type Blob struct {
	Bucket   string
	Endpoint string // scheme://host[:port], no path
	Region   string // default DefaultS3Region
}

// The S3 credentials' environment variables (the AWS tools' names).
const (
	S3AccessKeyEnv    = "AWS_ACCESS_KEY_ID"
	S3SecretKeyEnv    = "AWS_SECRET_ACCESS_KEY"
	S3SessionTokenEnv = "AWS_SESSION_TOKEN" // optional: temporary credentials
)

// DefaultS3Region is the region signed for when --blob names none.
const DefaultS3Region = "us-east-1"

// The values of --recording-urls.
const (
	RecordingURLsProxy     = "proxy"     // ivrd's own signed URLs, streamed from the store
	RecordingURLsPresigned = "presigned" // the object store's presigned GET URLs
)

// IsZero reports whether recordings stay on local disk.
func (b Blob) IsZero() bool { return b.Bucket == "" }

// String is the --blob value.
func (b Blob) String() string {
	if b.IsZero() {
		return ""
	}
	q := url.Values{"endpoint": {b.Endpoint}}
	if b.Region != DefaultS3Region {
		q.Set("region", b.Region)
	}
	return "s3://" + b.Bucket + "?" + q.Encode()
}

// ParseBlob parses a --blob value; "" is local disk.
func ParseBlob(s string) (Blob, error) {
	if s == "" {
		return Blob{}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Blob{}, errors.New("not a URL (want s3://BUCKET?endpoint=http://HOST:PORT&region=R)")
	}
	if u.Scheme != "s3" {
		return Blob{}, errors.New("only s3://BUCKET?endpoint=... is supported (empty: local disk)")
	}
	if u.User != nil || u.Port() != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" || u.Opaque != "" {
		return Blob{}, errors.New("want s3://BUCKET?endpoint=...: a bucket name alone, no user, port or path")
	}
	if err := checkBucket(u.Host); err != nil {
		return Blob{}, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Blob{}, fmt.Errorf("bad query: %v", err)
	}
	b := Blob{Bucket: u.Host, Region: DefaultS3Region}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		v := q[k]
		if len(v) != 1 {
			return Blob{}, fmt.Errorf("%s given %d times", k, len(v))
		}
		switch k {
		case "endpoint":
			e, err := url.Parse(v[0])
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.User != nil ||
				(e.Path != "" && e.Path != "/") || e.RawQuery != "" || e.Fragment != "" {
				return Blob{}, fmt.Errorf("endpoint %q: want http(s)://host[:port]", v[0])
			}
			b.Endpoint = e.Scheme + "://" + e.Host
		case "region":
			if v[0] == "" || strings.ContainsAny(v[0], " /?#&") {
				return Blob{}, fmt.Errorf("region %q is not a region name", v[0])
			}
			b.Region = v[0]
		default:
			return Blob{}, fmt.Errorf("unknown parameter %q (endpoint, region)", k)
		}
	}
	if b.Endpoint == "" {
		return Blob{}, errors.New("needs endpoint=http(s)://host[:port] (e.g. https://s3.eu-west-1.amazonaws.com)")
	}
	return b, nil
}

// checkBucket accepts S3 bucket names: 3–63 lower-case letters, digits, '-' and '.', starting
// and ending with a letter or digit, not an IP address.
func checkBucket(s string) error {
	bad := fmt.Errorf("bucket %q: 3-63 lower-case letters, digits, '-' and '.'", s)
	if len(s) < 3 || len(s) > 63 || net.ParseIP(s) != nil || strings.Contains(s, "..") {
		return bad
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(s)-1 || (c != '-' && c != '.')) {
			return bad
		}
	}
	return nil
}

type blobValue struct{ p *Blob }

// BlobValue is the --blob flag of the admin commands, checked and shown as serve's.
func BlobValue(p *Blob) flag.Value { return blobValue{p} }

func (v blobValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v blobValue) Set(s string) error {
	b, err := ParseBlob(s)
	if err != nil {
		return err
	}
	*v.p = b
	return nil
}

// S3Credentials returns the access key, secret key and session token from the environment.
func S3Credentials() (access, secret, token string) {
	return os.Getenv(S3AccessKeyEnv), os.Getenv(S3SecretKeyEnv), os.Getenv(S3SessionTokenEnv)
}

// validateBlob checks --blob against --recording-urls, --url-ttl and the credentials.
func (c *Config) validateBlob() []error {
	var errs []error
	if c.Blob.IsZero() {
		if c.RecordingURLs == RecordingURLsPresigned {
			errs = append(errs, errors.New("recording-urls: presigned needs --blob s3://... (local recordings are served by ivrd)"))
		}
		return errs
	}
	if access, secret, _ := S3Credentials(); access == "" || secret == "" {
		errs = append(errs, fmt.Errorf("blob: %s needs %s and %s in the environment", c.Blob.Bucket, S3AccessKeyEnv, S3SecretKeyEnv))
	}
	if c.RecordingURLs == RecordingURLsPresigned && (c.URLTTL > blob.MaxPresignTTL || c.URLTTL < time.Second) {
		errs = append(errs, fmt.Errorf("url-ttl: presigned S3 URLs live 1s to %v, not %v", blob.MaxPresignTTL, c.URLTTL))
	}
	return errs
}
