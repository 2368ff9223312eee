package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseBlob(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Blob
		str  string
	}{
		{"", Blob{}, ""},
		{"s3://recordings?endpoint=http://127.0.0.1:9000", Blob{Bucket: "recordings", Endpoint: "http://127.0.0.1:9000", Region: "us-east-1"},
			"s3://recordings?endpoint=http%3A%2F%2F127.0.0.1%3A9000"},
		{"s3://my.bucket-1/?region=eu-west-1&endpoint=https://s3.eu-west-1.amazonaws.com/", Blob{Bucket: "my.bucket-1", Endpoint: "https://s3.eu-west-1.amazonaws.com", Region: "eu-west-1"},
			"s3://my.bucket-1?endpoint=https%3A%2F%2Fs3.eu-west-1.amazonaws.com&region=eu-west-1"},
		{"s3://abc?endpoint=http://[::1]:9000&region=local", Blob{Bucket: "abc", Endpoint: "http://[::1]:9000", Region: "local"},
			"s3://abc?endpoint=http%3A%2F%2F%5B%3A%3A1%5D%3A9000&region=local"},
	} {
		got, err := ParseBlob(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got != tc.want || got.String() != tc.str {
			t.Errorf("%q: got %+v (%s), want %+v (%s)", tc.in, got, got, tc.want, tc.str)
		}
	}
	for bad, why := range map[string]string{
		"/var/lib/ivrd":                                        "only s3://",
		"file:///x":                                            "only s3://",
		"s3://?endpoint=http://h":                              "bucket",
		"s3://ab?endpoint=http://h":                            "bucket",
		"s3://Upper?endpoint=http://h":                         "bucket",
		"s3://-abc?endpoint=http://h":                          "bucket",
		"s3://abc-?endpoint=http://h":                          "bucket",
		"s3://a..b?endpoint=http://h":                          "bucket",
		"s3://a_b_c?endpoint=http://h":                         "bucket",
		"s3://10.0.0.1?endpoint=http://h":                      "bucket",
		"s3://bucket":                                          "needs endpoint",
		"s3://bucket/prefix?endpoint=http://h":                 "no user, port or path",
		"s3://key:secret@bucket?endpoint=http://h":             "no user, port or path",
		"s3://bucket:9000?endpoint=http://h":                   "no user, port or path",
		"s3://bucket?endpoint=ftp://h":                         "endpoint",
		"s3://bucket?endpoint=h:9000":                          "endpoint",
		"s3://bucket?endpoint=http://h/path":                   "endpoint",
		"s3://bucket?endpoint=http://u:p@h":                    "endpoint",
		"s3://bucket?endpoint=http://h&endpoint=http://i":      "endpoint given 2 times",
		"s3://bucket?endpoint=http://h&region=":                "region",
		"s3://bucket?endpoint=http://h&secret=x":               `unknown parameter "secret"`,
		"s3://bucket?endpoint=http://h&region=a/b":             "region",
		"s3://bucket?endpoint=%zz":                             "bad query",
		"s3://bucket?endpoint=http://h#frag":                   "no user, port or path",
		"s3:bucket?endpoint=http://h":                          "no user, port or path",
		"s3://bucket?endpoint=http://h&region=x&region=y":      "region given 2 times",
		"s3://bucket?endpoint=http://h?x=1":                    "endpoint",
		"s3://bucket?endpoint=http%3A%2F%2Fh%3Fx%3D1":          "endpoint",
		"s3://bucket?endpoint=http%3A%2F%2Fh%2Fp&region=local": "endpoint",
	} {
		if _, err := ParseBlob(bad); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want an error saying %q", bad, err, why)
		}
	}
}

func TestBlobSettings(t *testing.T) {
	const s3 = "s3://recordings?endpoint=http://127.0.0.1:9000"
	creds := map[string]string{S3AccessKeyEnv: "key", S3SecretKeyEnv: "secret"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no credentials", map[string]string{S3AccessKeyEnv: "", S3SecretKeyEnv: ""}, []string{"--blob", s3}, "blob: recordings needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"no secret", map[string]string{S3AccessKeyEnv: "key", S3SecretKeyEnv: ""}, []string{"--blob", s3}, "AWS_SECRET_ACCESS_KEY"},
		{"bad blob", nil, []string{"--blob", "s3://x"}, "blob: bucket"},
		{"env blob", map[string]string{"IVRD_BLOB": "/data"}, nil, `IVRD_BLOB="/data": only s3://`},
		{"url mode", nil, []string{"--recording-urls", "direct"}, "recording-urls: must be one of proxy, presigned"},
		{"presigned on disk", nil, []string{"--recording-urls", "presigned"}, "recording-urls: presigned needs --blob"},
		{"presigned ttl", creds, []string{"--blob", s3, "--recording-urls", "presigned", "--url-ttl", "169h"}, "url-ttl: presigned S3 URLs live 1s to 168h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if c, err := parse(t, nil); err != nil || !c.Blob.IsZero() || c.RecordingURLs != RecordingURLsProxy {
		t.Fatalf("default: %+v %q %v", c.Blob, c.RecordingURLs, err)
	}
	c, err := parse(t, creds, "--blob", s3)
	if err != nil {
		t.Fatal(err)
	}
	if c.Blob.Bucket != "recordings" || c.RecordingURLs != RecordingURLsProxy {
		t.Fatalf("blob %+v, urls %q", c.Blob, c.RecordingURLs)
	}
	c, err = parse(t, map[string]string{S3AccessKeyEnv: "key", S3SecretKeyEnv: "secret", "IVRD_BLOB": s3, "IVRD_RECORDING_URLS": "presigned"})
	if err != nil || c.Blob.Endpoint != "http://127.0.0.1:9000" || c.RecordingURLs != RecordingURLsPresigned {
		t.Fatalf("from the environment: %+v %q %v", c.Blob, c.RecordingURLs, err)
	}
	// The longest presigned lifetime S3 allows is accepted.
	if c, err := parse(t, creds, "--blob", s3, "--recording-urls", "presigned", "--url-ttl", "168h"); err != nil || c.URLTTL != 7*24*time.Hour {
		t.Fatal(err)
	}
}

func FuzzParseBlob(f *testing.F) {
	for _, s := range []string{"s3://recordings?endpoint=http://127.0.0.1:9000&region=r", "s3://a.b-c?endpoint=https://[::1]", "s3://x?endpoint=%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBlob(s)
		if err != nil {
			return
		}
		// What parsed prints back to the same settings, and is checked.
		again, err := ParseBlob(b.String())
		if err != nil || again != b {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, b, b.String(), again, err)
		}
		if !b.IsZero() && (checkBucket(b.Bucket) != nil || b.Endpoint == "" || b.Region == "") {
			t.Fatalf("%q accepted as %+v", s, b)
		}
	})
}
