package prompt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, msg, want string
	}{
		{"empty", "", ""},
		{"plain", "Hello", ""},
		{"seed speech", `<speech language="zh-HK" gender="female">請稍等,我們正在處理您的訂單。</speech>`, ""},
		{"seed url", `<url>http://example.com/myrecording.mp3</url>`, ""},
		{"https, port, query, upper-case ext", `<url>HTTPS://example.com:8443/a/B.WAV?sig=1&amp;x=2</url>`, ""},
		{"gsm", `<url>http://example.com/a.gsm</url>`, ""},
		{"every language", `<speech language="ms">a</speech><speech language="ta" gender="male">b</speech><speech language="JA">c</speech>`, ""},
		{"bad xml", `<speech>x`, StatusInvalidXML},
		{"xml before language", `<speech language="xx">x</speech><b>`, StatusInvalidXML},
		{"unknown language", `<speech language="klingon">x</speech>`, StatusInvalidLanguage},
		{"empty language", `<speech language="">x</speech>`, ""},
		{"bad gender", `<speech gender="other">x</speech>`, StatusInvalidGender},
		{"language checked before gender", `<speech language="xx" gender="other">x</speech>`, StatusInvalidLanguage},
		{"segment order", `<speech gender="x">a</speech><speech language="xx">b</speech>`, StatusInvalidGender},
		{"ftp", `<url>ftp://example.com/a.mp3</url>`, StatusInvalidURL},
		{"file scheme", `<url>file:///etc/passwd.wav</url>`, StatusInvalidURL},
		{"relative", `<url>/a.mp3</url>`, StatusInvalidURL},
		{"no host", `<url>http:///a.mp3</url>`, StatusInvalidURL},
		{"not a url", `<url>my recording.mp3</url>`, StatusInvalidURL},
		{"empty url", `<url></url>`, StatusInvalidURL},
		{"bad port", `<url>http://example.com:99999/a.mp3</url>`, StatusInvalidURL},
		{"bad escape", `<url>http://example.com/%zz.mp3</url>`, StatusInvalidURL},
		{"ogg", `<url>http://example.com/a.ogg</url>`, StatusInvalidFileFormat},
		{"no extension", `<url>http://example.com/audio?id=5</url>`, StatusInvalidFileFormat},
		{"extension only in query", `<url>http://example.com/play?f=a.mp3</url>`, StatusInvalidFileFormat},
	}
	p := newTestPrompter(t, Options{Espeak: "/nonexistent"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.msg)
			if got := StatusOf(err); got != tc.want {
				t.Fatalf("Check(%q) = %v, want %q", tc.msg, err, tc.want)
			}
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) || pe.Status() != tc.want || !strings.Contains(pe.Error(), tc.want) {
					t.Fatalf("error %#v does not carry its status", err)
				}
				// Prepare fails the same way, before any work.
				if _, perr := p.Prepare(context.Background(), tc.msg); StatusOf(perr) != tc.want {
					t.Fatalf("Prepare = %v", perr)
				}
			}
		})
	}
}

func TestCheckIsFast(t *testing.T) {
	p := newTestPrompter(t, Options{Espeak: "/nonexistent"})
	msg := strings.Repeat(`<speech language="zh-CN">你好</speech><url>https://example.com/a.mp3?x=1</url>`, 12)
	start := time.Now()
	for range 1000 {
		if err := p.Check(msg); err != nil {
			t.Fatal(err)
		}
	}
	if per := time.Since(start) / 1000; per > 5*time.Millisecond {
		t.Fatalf("Check takes %v per 1000-character msg", per)
	}
}

func TestErrorUnwrap(t *testing.T) {
	cause := errors.New("boom")
	err := error(fail(StatusDownloadFailed, cause))
	if !errors.Is(err, cause) || StatusOf(err) != StatusDownloadFailed || StatusOf(cause) != "" {
		t.Fatal("Error does not wrap its cause")
	}
	if s := (&Error{Code: StatusInvalidXML}).Error(); s != "prompt: error_msg_invalid_xml" {
		t.Fatalf("Error() = %q", s)
	}
	if e := asError(context.DeadlineExceeded, StatusCannotConvertText); !errors.Is(e, context.DeadlineExceeded) || StatusOf(e) != StatusCannotConvertText {
		t.Fatalf("asError = %v", e)
	}
}

func TestMemCacheLRU(t *testing.T) {
	c := newMemCache(100) // bytes: 50 samples
	c.put("a", make([]int16, 20))
	c.put("b", make([]int16, 20))
	c.get("a") // a is now the most recent
	c.put("c", make([]int16, 20))
	if _, ok := c.get("b"); ok {
		t.Error("b should have been evicted (least recently used)")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s evicted", k)
		}
	}
	if c.bytes() != 80 {
		t.Errorf("size %d, want 80", c.bytes())
	}
	c.put("huge", make([]int16, 51))
	if _, ok := c.get("huge"); ok || c.bytes() != 80 {
		t.Error("an entry over the whole budget must not be kept")
	}
	c.put("a", make([]int16, 5)) // replace
	if c.bytes() != 50 {
		t.Errorf("size after replace %d, want 50", c.bytes())
	}
}

func TestDiskCacheTrimAndCorruption(t *testing.T) {
	dir := t.TempDir()
	d, err := newDiskCache(dir, 3000, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 500) // 1012 bytes on disk
	for i := range pcm {
		pcm[i] = int16(i)
	}
	old := time.Now().Add(-time.Hour)
	for i, k := range []string{"k1", "k2"} {
		d.put("tts", k, pcm)
		at := old.Add(time.Duration(i) * time.Minute)
		os.Chtimes(d.path("tts", k, ".pcm"), at, at)
	}
	if got, ok := d.get("tts", "k1"); !ok || !equal16(got, pcm) { // refreshes k1's mtime
		t.Fatal("k1 not read back")
	}
	d.put("tts", "k3", pcm) // 3036 bytes > 3000: trim to 2700 removes the oldest, k2
	if _, ok := d.get("tts", "k2"); ok {
		t.Error("k2 (least recently used) survived the trim")
	}
	for _, k := range []string{"k1", "k3"} {
		if _, ok := d.get("tts", k); !ok {
			t.Errorf("%s trimmed", k)
		}
	}
	// A damaged file is a miss and is removed.
	name := d.path("tts", "k3", ".pcm")
	b, _ := os.ReadFile(name)
	os.WriteFile(name, b[:len(b)-1], 0o600)
	if _, ok := d.get("tts", "k3"); ok {
		t.Error("truncated file was accepted")
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Error("truncated file not removed")
	}
	// Temp files left by a crash are swept on start.
	tmp := filepath.Join(dir, "tts", ".tmp-123")
	os.WriteFile(tmp, []byte("x"), 0o600)
	os.Chtimes(tmp, old, old)
	if _, err := newDiskCache(dir, 3000, quietLog()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Error("stale temp file not removed")
	}
}
