package blob

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/tests3"
)

// newS3 starts a real S3 server (versitygw) and returns a store on its bucket.
func newS3(t *testing.T) (*S3, *tests3.Server) {
	t.Helper()
	srv := tests3.Start(t)
	s, err := NewS3(S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: srv.Bucket, AccessKey: srv.Access, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv
}

func readAll(t *testing.T, st Store, key string) []byte {
	t.Helper()
	b, err := ReadAll(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pattern is n bytes that differ at every offset of a piece boundary.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestS3PutOpenDelete(t *testing.T) {
	s, srv := newS3(t)
	data := pattern(300_000)
	src := writeFile(t, t.TempDir(), "rec.part", data)
	if err := s.PutFile("rec-1.mp3", src); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Objects("rec-1.mp3"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "rec-1.mp3"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, differ", len(got))
	}
	if o, err := s.Open(context.Background(), "rec-1.mp3"); err != nil || o.Size != int64(len(data)) || time.Since(o.ModTime).Abs() > time.Minute {
		t.Fatalf("Open: %+v, %v; want Size %d and a ModTime of now", o, err, len(data))
	} else {
		o.Close()
	}
	if _, err := os.Stat(src); err == nil {
		t.Fatal("the local file stays after PutFile")
	}
	// Replacing.
	if err := s.PutFile("rec-1.mp3", writeFile(t, t.TempDir(), "y", []byte("second"))); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, "rec-1.mp3"); string(got) != "second" {
		t.Fatalf("after replace: %q", got)
	}
	for _, key := range []string{"rec-2.mp3", "../etc/passwd", "", "pieces"} {
		if _, err := s.Open(context.Background(), key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q): %v; want ErrNotFound", key, err)
		}
	}
	if err := s.PutFile("a/b.mp3", writeFile(t, t.TempDir(), "z", []byte("x"))); !errors.Is(err, ErrBadKey) {
		t.Errorf("PutFile(a/b.mp3): %v", err)
	}
	if err := s.PutFile("ok.mp3", t.TempDir()); err == nil {
		t.Error("directory source accepted")
	}
	if err := s.Delete("rec-1.mp3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(context.Background(), "rec-1.mp3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
	if err := s.Delete("rec-1.mp3"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
}

func TestS3Refuses(t *testing.T) {
	srv := tests3.Start(t)
	for name, cfg := range map[string]S3Config{
		"wrong secret":   {Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: srv.Bucket, AccessKey: srv.Access, SecretKey: "wrong"},
		"missing bucket": {Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "nothere", AccessKey: srv.Access, SecretKey: srv.Secret},
		"bad endpoint":   {Endpoint: "127.0.0.1:1", Region: "us-east-1", Bucket: srv.Bucket},
		"nobody listens": {Endpoint: "http://127.0.0.1:1", Region: "us-east-1", Bucket: srv.Bucket, AccessKey: srv.Access, SecretKey: srv.Secret},
	} {
		if s, err := NewS3(cfg); err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// A store that goes away: Open says unavailable (the handler answers 502), not missing.
	s, err := NewS3(S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: srv.Bucket, AccessKey: srv.Access, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	if _, err := s.Open(ctx, "rec-1.mp3"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open with the store down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("Open with the store down took %v", d)
	}
	rec := httptest.NewRecorder()
	signer := Signer{Secret: bytes.Repeat([]byte{3}, SecretSize), BaseURL: "http://x"}
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, signer.URL("rec-1.mp3", time.Now()), nil)
	Handler(s, signer, nil).ServeHTTP(rec, req)
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("handler with the store down: %d, want 502", rec.Code)
	}
}

// TestS3Presigned: the store's own presigned URLs download the object (with Range), and the
// store refuses them once expired or tampered with.
func TestS3Presigned(t *testing.T) {
	s, _ := newS3(t)
	data := pattern(10_000)
	if err := s.PutFile("rec-p.mp3", writeFile(t, t.TempDir(), "p", data)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Presigner(0); err == nil {
		t.Fatal("TTL 0 accepted")
	}
	if _, err := s.Presigner(MaxPresignTTL + time.Second); err == nil {
		t.Fatal("TTL over 7 days accepted")
	}
	long, err := s.Presigner(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	short, err := s.Presigner(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if long.URL("../x", time.Now()) != "" {
		t.Fatal("presigned an invalid key")
	}
	good, soon := long.URL("rec-p.mp3", time.Now()), short.URL("rec-p.mp3", time.Now())
	if !strings.Contains(good, "X-Amz-Signature=") || !strings.HasPrefix(good, s.c.EndpointURL().String()) {
		t.Fatalf("presigned URL %s", good)
	}
	resp, body := do(t, http.MethodGet, good, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != "audio/mpeg" {
		t.Fatalf("GET: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	resp, body = do(t, http.MethodGet, good, map[string]string{"Range": "bytes=100-199"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:200]) {
		t.Fatalf("Range: %d %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := do(t, http.MethodGet, soon, nil); resp.StatusCode != 200 {
		t.Fatalf("short-lived URL at once: %d", resp.StatusCode)
	}
	u, _ := url.Parse(good)
	for name, tc := range map[string]struct {
		mod  func(url.Values)
		want int
	}{
		"signature": {func(v url.Values) {
			sig, d := v.Get("X-Amz-Signature"), "0"
			if sig[0] == '0' {
				d = "1"
			}
			v.Set("X-Amz-Signature", d+sig[1:])
		}, http.StatusForbidden},
		"expiry":   {func(v url.Values) { v.Set("X-Amz-Expires", "604800") }, http.StatusForbidden},
		"unsigned": {func(v url.Values) { v.Del("X-Amz-Signature") }, http.StatusBadRequest}, // a malformed request
	} {
		q := u.Query()
		tc.mod(q)
		t2 := *u
		t2.RawQuery = q.Encode()
		if resp, body := do(t, http.MethodGet, t2.String(), nil); resp.StatusCode != tc.want || bytes.Contains(body, data[:64]) {
			t.Errorf("tampered %s: %d, want %d", name, resp.StatusCode, tc.want)
		}
	}
	other := *u
	other.Path = strings.Replace(u.Path, "rec-p", "rec-q", 1)
	if resp, _ := do(t, http.MethodGet, other.String(), nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("signature used for another key: %d", resp.StatusCode)
	}
	time.Sleep(3 * time.Second)
	if resp, body := do(t, http.MethodGet, soon, nil); resp.StatusCode != http.StatusForbidden || bytes.Contains(body, data[:64]) {
		t.Fatalf("expired presigned URL: %d, want 403", resp.StatusCode)
	}
}

// TestS3Proxy: ivrd's own signed URLs stream the object from the store (proxy mode), with
// Range and HEAD, and refuse expired or tampered URLs before asking the store.
func TestS3Proxy(t *testing.T) {
	s, _ := newS3(t)
	data := pattern(200_000)
	if err := s.PutFile("rec-x.mp3", writeFile(t, t.TempDir(), "p", data)); err != nil {
		t.Fatal(err)
	}
	signer := Signer{Secret: bytes.Repeat([]byte{9}, SecretSize), TTL: time.Minute}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	signer.BaseURL = srv.URL
	mux.Handle(PathPrefix, Handler(s, signer, nil))
	raw := signer.URL("rec-x.mp3", time.Now())

	resp, body := do(t, http.MethodGet, raw, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != "audio/mpeg" {
		t.Fatalf("GET: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	for _, r := range []struct {
		hdr      string
		from, to int
		content  string
	}{
		{"bytes=10-19", 10, 20, "bytes 10-19/200000"},
		{"bytes=150000-", 150000, 200000, "bytes 150000-199999/200000"},
		{"bytes=-100", 199900, 200000, "bytes 199900-199999/200000"},
	} {
		resp, body = do(t, http.MethodGet, raw, map[string]string{"Range": r.hdr})
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[r.from:r.to]) || resp.Header.Get("Content-Range") != r.content {
			t.Fatalf("Range %s: %d %q %d bytes", r.hdr, resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
		}
	}
	resp, body = do(t, http.MethodHead, raw, nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "200000" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	if resp, _ = do(t, http.MethodGet, raw, map[string]string{"Range": "bytes=999999-"}); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
	}
	if resp, _ = do(t, http.MethodGet, signer.URL("rec-none.mp3", time.Now()), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("signed but missing: %d", resp.StatusCode)
	}
	good, _ := url.Parse(raw)
	q := good.Query()
	for name, u := range map[string]string{
		"expired":  signer.URL("rec-x.mp3", time.Now().Add(-2*time.Minute)),
		"tampered": srv.URL + PathPrefix + "rec-x.mp3?Expires=" + q.Get("Expires") + "&Signature=" + strings.Repeat("0", 64),
		"unsigned": srv.URL + PathPrefix + "rec-x.mp3",
	} {
		if resp, body := do(t, http.MethodGet, u, nil); resp.StatusCode != http.StatusForbidden || bytes.Contains(body, data[:64]) {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
}

// TestS3Pieces: pieces put at their offsets read back as the blob, up to a gap; overlapping
// pieces are read once; DeletePieces removes them and nothing else.
func TestS3Pieces(t *testing.T) {
	s, srv := newS3(t)
	ctx := context.Background()
	data := pattern(50_000)
	var buf bytes.Buffer
	if n, err := s.ReadPieces(ctx, "rec-1.mp3", &buf); err != nil || n != 0 {
		t.Fatalf("no pieces: %d, %v", n, err)
	}
	cuts := []int{0, 4000, 4001, 20000, 37123, 50000}
	for i := len(cuts) - 2; i >= 0; i-- { // the order of uploads does not matter
		if err := s.PutPiece(ctx, "rec-1.mp3", int64(cuts[i]), data[cuts[i]:cuts[i+1]]); err != nil {
			t.Fatal(err)
		}
	}
	// A repeated upload from an earlier offset (overlapping two pieces).
	if err := s.PutPiece(ctx, "rec-1.mp3", 3000, data[3000:25000]); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPiece(ctx, "rec-2.mp3", 0, []byte("other")); err != nil {
		t.Fatal(err)
	}
	objs, err := srv.Objects("pieces/rec-1.mp3/")
	if err != nil || len(objs) != len(cuts) {
		t.Fatalf("objects %v, %v; want %d pieces", objs, err, len(cuts))
	}
	if objs[3].Name != "pieces/rec-1.mp3/0000000000004001" {
		t.Fatalf("piece names: %v", objs)
	}
	n, err := s.ReadPieces(ctx, "rec-1.mp3", &buf)
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("ReadPieces: %d bytes, %v; equal %v", n, err, bytes.Equal(buf.Bytes(), data))
	}
	// A gap: what follows it is left out.
	if err := s.PutPiece(ctx, "rec-1.mp3", 60000, []byte("after a gap")); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if n, err := s.ReadPieces(ctx, "rec-1.mp3", &buf); err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("ReadPieces with a gap: %d bytes, %v", n, err)
	}
	if err := s.DeletePieces(ctx, "rec-1.mp3"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ReadPieces(ctx, "rec-1.mp3", &buf); n != 0 || err != nil {
		t.Fatalf("after DeletePieces: %d, %v", n, err)
	}
	if objs, _ := srv.Objects("pieces/rec-2.mp3/"); len(objs) != 1 {
		t.Fatalf("other recording's pieces: %v", objs)
	}
	if err := s.DeletePieces(ctx, "rec-1.mp3"); err != nil {
		t.Fatalf("deleting no pieces: %v", err)
	}
	if err := s.PutPiece(ctx, "../x", 0, nil); !errors.Is(err, ErrBadKey) {
		t.Fatalf("bad key: %v", err)
	}
}
