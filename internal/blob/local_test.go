package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"rec-0123abcd.mp3": true, "a": true, "A_b-c.d": true,
		"": false, ".": false, "..": false, ".hidden": false, "../x": false, "a/b": false, `a\b`: false,
		"a b": false, "a%2fb": false, "a\x00": false, "ré.mp3": false,
		string(bytes.Repeat([]byte("a"), 200)): true, string(bytes.Repeat([]byte("a"), 201)): false,
	} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLocalPutOpen(t *testing.T) {
	l := &Local{Dir: filepath.Join(t.TempDir(), "recordings")} // created on first put
	src := writeFile(t, t.TempDir(), "x.part", []byte("first"))
	if err := l.PutFile("rec-1.mp3", src); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("source still there: %v", err)
	}
	readBack := func(key string) string {
		f, err := l.Open(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		return string(b)
	}
	if got := readBack("rec-1.mp3"); got != "first" {
		t.Fatalf("read %q", got)
	}
	// Putting the same key again replaces it (recovery may store a recording twice).
	if err := l.PutFile("rec-1.mp3", writeFile(t, t.TempDir(), "y", []byte("second"))); err != nil {
		t.Fatal(err)
	}
	if got := readBack("rec-1.mp3"); got != "second" {
		t.Fatalf("after replace: %q", got)
	}
	for _, key := range []string{"rec-2.mp3", "../etc/passwd", "", "."} {
		if _, err := l.Open(context.Background(), key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q): %v; want ErrNotFound", key, err)
		}
	}
	if err := os.Mkdir(filepath.Join(l.Dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(context.Background(), "adir"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(directory): %v", err)
	}
}

func TestLocalPutRejects(t *testing.T) {
	dir := t.TempDir()
	l := &Local{Dir: filepath.Join(dir, "store")}
	src := writeFile(t, dir, "src", []byte("x"))
	for _, key := range []string{"../evil.mp3", "a/b.mp3", "..", "", ".x"} {
		if err := l.PutFile(key, src); !errors.Is(err, ErrBadKey) {
			t.Errorf("PutFile(%q): %v; want ErrBadKey", key, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "evil.mp3")); err == nil {
		t.Fatal("file escaped the store")
	}
	if err := l.PutFile("ok.mp3", filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing source accepted")
	}
	if err := l.PutFile("ok.mp3", dir); err == nil {
		t.Fatal("directory source accepted")
	}
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("rejected put touched the source: %v", err)
	}
}

// TestCopyReplace covers the cross-file-system path directly (the temp dirs share a file system).
func TestCopyReplace(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789"), 100000)
	src := writeFile(t, dir, "src", data)
	dst := writeFile(t, dir, "dst", []byte("old"))
	if err := copyReplace(src, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("dst %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("src not removed: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("leftovers: %v", ents)
	}
	if err := copyReplace(filepath.Join(dir, "missing"), dst); err == nil {
		t.Fatal("missing source copied")
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "url-signing.key")
	a, err := LoadOrCreateSecret(path)
	if err != nil || len(a) != SecretSize {
		t.Fatalf("%x, %v", a, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	b, err := LoadOrCreateSecret(path)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second load differs: %x %x %v", a, b, err)
	}
	other, _ := LoadOrCreateSecret(filepath.Join(t.TempDir(), "k"))
	if bytes.Equal(a, other) {
		t.Fatal("two secrets are equal")
	}
	bad := writeFile(t, t.TempDir(), "short", []byte("short"))
	if _, err := LoadOrCreateSecret(bad); err == nil {
		t.Fatal("short secret accepted")
	}
	if b, _ := os.ReadFile(bad); string(b) != "short" {
		t.Fatal("bad secret file was replaced")
	}
}

func TestLoadOrCreateSecretRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = LoadOrCreateSecret(path); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range got {
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("callers disagree: %x vs %x", got[i], got[0])
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("leftover temp files: %v", ents)
	}
}

// TestLocalDelete: a deleted blob is gone (Open says ErrNotFound); deleting it again, or a key
// never stored, is fine; a bad key is refused and touches nothing.
func TestLocalDelete(t *testing.T) {
	l := &Local{Dir: filepath.Join(t.TempDir(), "recordings")}
	if err := l.PutFile("rec-1.mp3", writeFile(t, t.TempDir(), "x", []byte("data"))); err != nil {
		t.Fatal(err)
	}
	outside := writeFile(t, filepath.Dir(l.Dir), "outside.mp3", []byte("keep"))
	for _, key := range []string{"rec-1.mp3", "rec-1.mp3", "never.mp3"} {
		if err := l.Delete(key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
	}
	if _, err := l.Open(context.Background(), "rec-1.mp3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
	if err := l.Delete("../outside.mp3"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("Delete(../outside.mp3): %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("a bad key removed a file outside the store: %v", err)
	}
}
