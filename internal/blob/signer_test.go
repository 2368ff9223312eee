package blob

import (
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"
)

var testSigner = Signer{Secret: []byte("0123456789abcdef0123456789abcdef"), BaseURL: "http://127.0.0.1:8080/", TTL: time.Hour}

func parse(t testing.TB, raw string) (key, exp, sig string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, PathPrefix), u.Query().Get("Expires"), u.Query().Get("Signature")
}

func TestSignerURL(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	raw := testSigner.URL("rec-1.mp3", now)
	if !strings.HasPrefix(raw, "http://127.0.0.1:8080/recordings/rec-1.mp3?Expires=1700003600&Signature=") {
		t.Fatalf("URL = %s", raw)
	}
	key, exp, sig := parse(t, raw)
	if len(sig) != 64 || strings.ToLower(sig) != sig {
		t.Fatalf("signature %q", sig)
	}
	if !testSigner.Verify(key, exp, sig, now) || !testSigner.Verify(key, exp, sig, now.Add(time.Hour-time.Second)) {
		t.Fatal("valid URL rejected")
	}
	if testSigner.Verify(key, exp, sig, now.Add(time.Hour)) {
		t.Fatal("accepted at expiry")
	}
	// Default TTL.
	_, exp, _ = parse(t, Signer{Secret: testSigner.Secret}.URL("k", now))
	if exp != "1700604800" {
		t.Fatalf("default TTL expires %s", exp)
	}
}

func TestSignerVerifyRejects(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	key, exp, sig := parse(t, testSigner.URL("rec-1.mp3", now))
	flip := func(s string) string { // change the last character
		b := []byte(s)
		if b[len(b)-1] == '0' {
			b[len(b)-1] = '1'
		} else {
			b[len(b)-1] = '0'
		}
		return string(b)
	}
	for name, tc := range map[string]struct {
		s             Signer
		key, exp, sig string
	}{
		"other key":     {testSigner, "rec-2.mp3", exp, sig},
		"later expires": {testSigner, key, "1700099999", sig},
		"leading zero":  {testSigner, key, "0" + exp, sig},
		"plus sign":     {testSigner, key, "+" + exp, sig},
		"negative":      {testSigner, key, "-1", sig},
		"huge":          {testSigner, key, "99999999999999999999", sig},
		"empty expires": {testSigner, key, "", sig},
		"flipped sig":   {testSigner, key, exp, flip(sig)},
		"short sig":     {testSigner, key, exp, sig[:62]},
		"non-hex sig":   {testSigner, key, exp, "zz" + sig[2:]},
		"empty sig":     {testSigner, key, exp, ""},
		"other secret":  {Signer{Secret: []byte("another secret of thirty-two b..")}, key, exp, sig},
		"empty secret":  {Signer{}, key, exp, sig},
		"traversal key": {testSigner, "../rec-1.mp3", exp, sig},
	} {
		if tc.s.Verify(tc.key, tc.exp, tc.sig, now) {
			t.Errorf("%s: verified", name)
		}
	}
	// Upper-case hex is the same MAC; BaseURL is not part of it.
	if !testSigner.Verify(key, exp, strings.ToUpper(sig), now) || !(Signer{Secret: testSigner.Secret, BaseURL: "https://x"}).Verify(key, exp, sig, now) {
		t.Error("equivalent signature rejected")
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	key, exp, sig := parse(f, testSigner.URL("rec-1.mp3", now))
	f.Add(key, exp, sig)
	f.Add("../x", "1", "00")
	f.Add("rec-1.mp3", "0"+exp, sig)
	f.Fuzz(func(t *testing.T, key, exp, sig string) {
		ok := testSigner.Verify(key, exp, sig, now)
		if !ok {
			return
		}
		// Whatever verifies must be exactly what the signer would produce for that key.
		if !ValidKey(key) {
			t.Fatalf("verified invalid key %q", key)
		}
		if got := strings.ToLower(sig); got != hex.EncodeToString(testSigner.mac(key, exp)) {
			t.Fatalf("verified foreign signature %q for %q %q", sig, key, exp)
		}
	})
}
