package telephony

import (
	"bufio"
	"errors"
	"strings"
)

// DTMF in SIP INFO (out of band), as sent by many PBXs and softphones:
//
//	Content-Type: application/dtmf-relay
//
//	Signal=5
//	Duration=160
//
// and the rarer
//
//	Content-Type: application/dtmf
//
//	5

var errNoSignal = errors.New("telephony: INFO body carries no DTMF signal")

// parseInfoDTMF returns the key carried by an INFO body of the given content type.
func parseInfoDTMF(contentType string, body []byte) (rune, error) {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	switch ct {
	case "application/dtmf-relay":
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		for sc.Scan() {
			name, value, ok := strings.Cut(sc.Text(), "=")
			if ok && strings.EqualFold(strings.TrimSpace(name), "signal") {
				return signalKey(strings.TrimSpace(value))
			}
		}
		return 0, errNoSignal
	case "application/dtmf":
		return signalKey(strings.TrimSpace(string(body)))
	}
	return 0, errUnsupportedInfo
}

var errUnsupportedInfo = errors.New("telephony: unsupported INFO content type")

// signalKey maps an INFO signal value to its key: one of 0-9 * # A-D (any case), or the event
// codes 10 and 11 some gateways send for * and #.
func signalKey(v string) (rune, error) {
	switch v {
	case "10":
		return '*', nil
	case "11":
		return '#', nil
	}
	if len(v) == 1 {
		c := rune(v[0])
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#', c >= 'A' && c <= 'D':
			return c, nil
		case c >= 'a' && c <= 'd':
			return c - 'a' + 'A', nil
		}
	}
	return 0, errNoSignal
}
