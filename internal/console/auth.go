package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Who a console session acts for.
const (
	roleNone     = ""         // not signed in: the session of a sign-in form
	roleApp      = "app"      // an app, with its app_id and access_token: its own calls only
	roleOperator = "operator" // the operator, with --console-password: every app
)

// principal is who a request acts for.
type principal struct {
	Role  string
	AppID string // roleApp: the app
}

func (p principal) signedIn() bool { return p.Role == roleApp || p.Role == roleOperator }

// scope is the app whose data the principal sees: its own, or "" (every app) for the operator.
func (p principal) scope() string {
	if p.Role == roleOperator {
		return ""
	}
	return p.AppID
}

// sees reports whether the principal may see what belongs to appID.
func (p principal) sees(appID string) bool {
	return p.Role == roleOperator || (p.Role == roleApp && p.AppID == appID)
}

// ticket is the content of the session cookie, signed by the server (keyring.seal): who,
// until when, the random nonce the session's CSRF token is made from, and a fingerprint of
// the credential signed in with, so that rotating an app's token or changing the operator
// password ends the sessions opened with the old one.
type ticket struct {
	Role    string `json:"r"`
	AppID   string `json:"a,omitempty"`
	Nonce   string `json:"n"`
	Expires int64  `json:"e"` // unix seconds
	Cred    string `json:"c,omitempty"`
}

// keyring signs and checks what the console hands out. Its key is derived from the data
// directory's secret under a label of its own, so a cookie's MAC is never a valid URL
// signature or the other way round.
type keyring struct{ key []byte }

const keyLabel = "ivrd console v1"

func newKeyring(secret []byte) keyring {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(keyLabel))
	return keyring{key: m.Sum(nil)}
}

// mac is the HMAC-SHA256 of purpose|data under the console key.
func (k keyring) mac(purpose, data string) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(purpose))
	m.Write([]byte{'|'})
	m.Write([]byte(data))
	return m.Sum(nil)
}

const ticketPrefix = "v1."

var b64 = base64.RawURLEncoding

// seal returns the cookie value of t: "v1.<payload>.<mac>", both base64url.
func (k keyring) seal(t ticket) string {
	body, _ := json.Marshal(t) // a struct of strings and an int: cannot fail
	payload := b64.EncodeToString(body)
	return ticketPrefix + payload + "." + b64.EncodeToString(k.mac("session", payload))
}

// maxCookie bounds what open reads (a ticket is about 200 bytes).
const maxCookie = 1024

// open checks a cookie value and returns its ticket; ok is false when it is malformed, its
// signature does not verify, or it has expired at now.
func (k keyring) open(v string, now time.Time) (ticket, bool) {
	if len(v) > maxCookie {
		return ticket{}, false
	}
	rest, ok := strings.CutPrefix(v, ticketPrefix)
	if !ok {
		return ticket{}, false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return ticket{}, false
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.mac("session", payload)) {
		return ticket{}, false
	}
	body, err := b64.DecodeString(payload)
	if err != nil {
		return ticket{}, false
	}
	var t ticket
	if err := json.Unmarshal(body, &t); err != nil || t.Nonce == "" || now.Unix() >= t.Expires {
		return ticket{}, false
	}
	switch t.Role {
	case roleNone, roleOperator:
		return t, t.AppID == ""
	case roleApp:
		return t, t.AppID != ""
	}
	return ticket{}, false
}

// csrf is the CSRF token of the session with nonce: every form of the session carries it,
// and every POST must (checkCSRF).
func (k keyring) csrf(nonce string) string { return hex.EncodeToString(k.mac("csrf", nonce)) }

// checkCSRF reports whether got is the CSRF token of the session with nonce.
func (k keyring) checkCSRF(nonce, got string) bool {
	want := k.csrf(nonce)
	return nonce != "" && len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// fingerprint stands for a credential in a ticket without revealing it.
func (k keyring) fingerprint(cred string) string {
	return hex.EncodeToString(k.mac("credential", cred)[:16])
}

// credentialOK reports whether got is want, in time that does not depend on where they
// differ. An empty want (no operator password set; an app without a token) matches nothing.
func credentialOK(want, got string) bool {
	if want == "" {
		return false
	}
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(w[:], g[:]) == 1
}

// newNonce returns 128 random bits, hex.
func newNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("console: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
