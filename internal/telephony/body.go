package telephony

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"
)

// Content types of SIP message bodies ivrd reads.
const (
	ctSDP       = "application/sdp"
	ctMultipart = "multipart/mixed"
)

// maxBodyParts bounds how many parts of a multipart body are looked at.
const maxBodyParts = 16

var errBadBody = errors.New("telephony: malformed message body")

// sdpBody returns the session description a SIP message carries: the body itself when its
// Content-Type is application/sdp, or the application/sdp part of a multipart/mixed body (as
// SIP-I carriers send SDP with an ISUP part, RFC 3204). It returns nil when the message
// carries no SDP (no body, or only parts of other types: a late offer), and errBadBody when
// the body cannot be read (a multipart body without a boundary, a part that never ends).
func sdpBody(contentType string, body []byte) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, errBadBody
	}
	switch {
	case mt == ctSDP:
		return body, nil
	case strings.HasPrefix(mt, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" {
			return nil, errBadBody
		}
		r := multipart.NewReader(bytes.NewReader(body), boundary)
		for range maxBodyParts {
			p, err := r.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil, nil
			}
			if err != nil {
				return nil, errBadBody
			}
			pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if err != nil || pt != ctSDP {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(p, int64(len(body))))
			if err != nil {
				return nil, errBadBody
			}
			return b, nil
		}
		return nil, nil
	}
	return nil, nil // another body type alone: no offer
}
