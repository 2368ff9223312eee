package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	body := []byte("a=1&b=2")
	m := hmac.New(sha256.New, []byte("tok"))
	m.Write(body)
	want := hex.EncodeToString(m.Sum(nil))
	if got := Sign("tok", body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	sig := Sign("tok", body)
	for name, tc := range map[string]struct {
		token, body, sig string
		ok               bool
	}{
		"valid":       {"tok", "a=1&b=2", sig, true},
		"upper hex":   {"tok", "a=1&b=2", strings.ToUpper(sig), true},
		"other token": {"tok2", "a=1&b=2", sig, false},
		"other body":  {"tok", "a=1&b=3", sig, false},
		"truncated":   {"tok", "a=1&b=2", sig[:63], false},
		"short":       {"tok", "a=1&b=2", sig[:62], false},
		"empty":       {"tok", "a=1&b=2", "", false},
		"not hex":     {"tok", "a=1&b=2", "g" + sig[1:], false},
	} {
		if got := Verify(tc.token, []byte(tc.body), tc.sig); got != tc.ok {
			t.Errorf("%s: Verify = %v", name, got)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("tok", []byte("a=1"), Sign("tok", []byte("a=1")))
	f.Add("", []byte{}, "")
	f.Add("tok", []byte("a=1"), "zz")
	f.Fuzz(func(t *testing.T, token string, body []byte, sig string) {
		if Verify(token, body, sig) != (strings.ToLower(sig) == Sign(token, body)) {
			t.Fatalf("Verify(%q, %q, %q) disagrees with Sign", token, body, sig)
		}
	})
}

func TestBody(t *testing.T) {
	for _, tc := range []struct {
		target string
		params url.Values
		want   string
	}{
		{"http://h/n", url.Values{"b": {"2"}, "a": {"1"}}, "a=1&b=2"},
		{"http://h/n?x=1&y=2", url.Values{"a": {"1"}}, "a=1&x=1&y=2"},
		{"http://h/n?tag=app&tag=two&x=1", url.Values{"tag": {"mine"}}, "tag=mine&x=1"}, // own params win
		{"http://h/n?x=a%20b", url.Values{"d": {"1 2&3"}}, "d=1+2%263&x=a+b"},
		{"http://h/n?x=1&bad=%zz", nil, "x=1"}, // what parses is kept
		{"http://h/n?", url.Values{}, ""},
	} {
		u, err := url.Parse(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(Body(u, tc.params)); got != tc.want {
			t.Errorf("Body(%s, %v) = %q, want %q", tc.target, tc.params, got, tc.want)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	for target, ok := range map[string]bool{
		"http://h/n": true, "https://h:8443/n?x=1": true, "HTTP://h/": true,
		"": false, "/relative": false, "h/n": false, "ftp://h/": false, "http:///n": false,
		"http:opaque": false, "mailto:a@b": false, "http://h/%zz": false, "javascript:alert(1)": false,
	} {
		if _, err := checkTarget(target); (err == nil) != ok {
			t.Errorf("checkTarget(%q) = %v, want ok=%v", target, err, ok)
		}
	}
}
