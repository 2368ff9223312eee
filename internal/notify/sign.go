package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Headers sent with every delivery.
const (
	HeaderSignature  = "X-Hoiio-Signature"  // Sign(access_token, body)
	HeaderDeliveryID = "X-Ivrd-Delivery-Id" // the same on every attempt: apps drop duplicates by it
	HeaderAttempt    = "X-Ivrd-Attempt"     // 1, 2, 3 ...
)

// Sign returns the lowercase hex HMAC-SHA256 of body keyed with an app's access token: the
// X-Hoiio-Signature header of a notification.
func Sign(token string, body []byte) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig (hex, either case) is the signature of body under token. The
// comparison is constant-time. Apps receiving notifications do the same check.
func Verify(token string, body []byte, sig string) bool {
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write(body)
	return hmac.Equal(m.Sum(nil), got)
}
