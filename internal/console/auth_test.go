package console

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestTicketSealAndOpen(t *testing.T) {
	k := newKeyring(testSecret)
	other := newKeyring([]byte("another secret of 32 bytes......"))
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Hour).Unix()
	app := ticket{Role: roleApp, AppID: "AP1", Nonce: "n1", Expires: exp, Cred: "fp"}
	valid := k.seal(app)
	payload, sig, _ := strings.Cut(strings.TrimPrefix(valid, ticketPrefix), ".")
	forged := ticket{Role: roleOperator, Nonce: "n1", Expires: exp}
	forgedPayload := strings.TrimSuffix(strings.TrimPrefix(k.seal(forged), ticketPrefix), "."+sig)
	forgedPayload, _, _ = strings.Cut(forgedPayload, ".")
	for _, tc := range []struct {
		name  string
		value string
		ok    bool
		want  ticket
	}{
		{"app", valid, true, app},
		{"operator", k.seal(ticket{Role: roleOperator, Nonce: "n", Expires: exp, Cred: "x"}), true, ticket{Role: roleOperator, Nonce: "n", Expires: exp, Cred: "x"}},
		{"sign-in form", k.seal(ticket{Nonce: "n", Expires: exp}), true, ticket{Nonce: "n", Expires: exp}},
		{"another key", other.seal(app), false, ticket{}},
		{"payload swapped under the signature", ticketPrefix + forgedPayload + "." + sig, false, ticket{}},
		{"signature cut", ticketPrefix + payload + "." + sig[:len(sig)-2], false, ticket{}},
		{"no signature", ticketPrefix + payload, false, ticket{}},
		{"no prefix", strings.TrimPrefix(valid, ticketPrefix), false, ticket{}},
		{"expired", k.seal(ticket{Role: roleApp, AppID: "AP1", Nonce: "n", Expires: now.Unix()}), false, ticket{}},
		{"no nonce", k.seal(ticket{Role: roleApp, AppID: "AP1", Expires: exp}), false, ticket{}},
		{"unknown role", k.seal(ticket{Role: "admin", Nonce: "n", Expires: exp}), false, ticket{}},
		{"app without id", k.seal(ticket{Role: roleApp, Nonce: "n", Expires: exp}), false, ticket{}},
		{"operator with an app", k.seal(ticket{Role: roleOperator, AppID: "AP1", Nonce: "n", Expires: exp}), false, ticket{}},
		{"too long", valid + strings.Repeat("A", maxCookie), false, ticket{}},
		{"empty", "", false, ticket{}},
		{"garbage", "v1.%%%.%%%", false, ticket{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := k.open(tc.value, now)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("open = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	k := newKeyring(testSecret)
	tok := k.csrf("nonce-1")
	for _, tc := range []struct {
		name, nonce, got string
		ok               bool
	}{
		{"its session's", "nonce-1", tok, true},
		{"another session's", "nonce-2", tok, false},
		{"missing", "nonce-1", "", false},
		{"cut", "nonce-1", tok[:len(tok)-1], false},
		{"changed", "nonce-1", tok[:len(tok)-1] + "0", tok[len(tok)-1] == '0'},
		{"no session", "", k.csrf(""), false},
		{"another key's", "nonce-1", newKeyring([]byte("another secret of 32 bytes......")).csrf("nonce-1"), false},
	} {
		if got := k.checkCSRF(tc.nonce, tc.got); got != tc.ok {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
	if k.csrf("n") == k.fingerprint("n") || k.csrf("n") == k.csrf("m") {
		t.Fatal("CSRF tokens are not bound to their purpose and session")
	}
}

func TestCredentialOK(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"s3cret", "s3cret", true},
		{"s3cret", "s3cret ", false},
		{"s3cret", "S3cret", false},
		{"s3cret", "", false},
		{"", "", false}, // no password set: nobody signs in as the operator
		{"", "anything", false},
	} {
		if got := credentialOK(tc.want, tc.got); got != tc.ok {
			t.Errorf("credentialOK(%q, %q) = %v", tc.want, tc.got, got)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/console/recordings?page=2", "/console/recordings?page=2"},
		{"/console/", "/console/"},
		{"", "/console/"},
		{"https://evil.example/console/", "/console/"},
		{"//evil.example/console/", "/console/"},
		{"/console//evil.example", "/console/"},
		{"/console/\\evil", "/console/"},
		{"/open/ivr/recordings/list", "/console/"},
		{"/console/x\r\nSet-Cookie: a=b", "/console/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := safeReturn("", "/console/outbox"); got != "/console/outbox" {
		t.Errorf("safeReturn default: %q", got)
	}
	if got := safeReturn("/console/demo", "/console/outbox"); got != "/console/demo" {
		t.Errorf("safeReturn: %q", got)
	}
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:5555", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:1", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"weird", "weird"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if got := clientKey(r); got != tc.want {
			t.Errorf("clientKey(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// FuzzOpenTicket: any cookie value is refused or opens to a ticket that seals back to a
// value opening to the same ticket; nothing unsigned is ever accepted.
func FuzzOpenTicket(f *testing.F) {
	k := newKeyring(testSecret)
	now := time.Unix(1_800_000_000, 0)
	f.Add(k.seal(ticket{Role: roleApp, AppID: "AP1", Nonce: "n", Expires: now.Unix() + 60, Cred: "c"}))
	f.Add(k.seal(ticket{Nonce: "n", Expires: now.Unix() + 60}))
	f.Add("v1.eyJyIjoib3BlcmF0b3IifQ.AAAA")
	f.Add("v1..")
	f.Fuzz(func(t *testing.T, v string) {
		tk, ok := k.open(v, now)
		if !ok {
			return
		}
		if !strings.HasPrefix(v, ticketPrefix) || tk.Nonce == "" || tk.Expires <= now.Unix() {
			t.Fatalf("accepted %q as %+v", v, tk)
		}
		again, ok := k.open(k.seal(tk), now)
		if !ok || again != tk {
			t.Fatalf("round trip of %+v: %+v, %v", tk, again, ok)
		}
		if _, ok := newKeyring([]byte("another secret of 32 bytes......")).open(v, now); ok {
			t.Fatalf("%q opens under another key", v)
		}
	})
}
