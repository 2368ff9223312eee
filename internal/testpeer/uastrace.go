package testpeer

import (
	"strings"
	"time"
)

// uasOutcome is an answerer's call as its trace tells it.
type uasOutcome struct {
	status        int       // final status we sent to the INVITE
	answeredAt    time.Time // when our 200 OK went out
	byeFromServer bool      // the caller sent BYE
	byeAt         time.Time // first BYE, either way
	cancelled     bool      // the caller sent CANCEL
}

func readUASOutcome(msgs []traceMsg) uasOutcome {
	var o uasOutcome
	for _, m := range msgs {
		if strings.HasPrefix(m.Start, "BYE ") {
			if o.byeAt.IsZero() {
				o.byeAt = m.At
			}
			o.byeFromServer = o.byeFromServer || m.Received
		}
		if m.Received {
			o.cancelled = o.cancelled || strings.HasPrefix(m.Start, "CANCEL ")
			continue
		}
		if code := m.statusCode(); code >= 200 && m.Method == "INVITE" && o.status == 0 {
			o.status = code
			if code < 300 {
				o.answeredAt = m.At
			}
		}
	}
	return o
}

// invitedParties is who the first INVITE an answerer received was for and from.
type invitedParties struct {
	requestUser  string // the Request-URI's user part
	fromUser     string // the From URI's user part
	assertedUser string // the P-Asserted-Identity URI's user part (a tel: URI's number)
}

// inviteParties reads the parties of the first INVITE received in a sipp message trace (""
// for those absent).
func inviteParties(log string) invitedParties {
	var p invitedParties
	received, first, inHeaders := false, false, false
	for line := range strings.Lines(log) {
		line = strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "-----------------------------------------------"):
			received, first, inHeaders = false, false, false
			continue
		case !first && strings.Contains(line, " message received "):
			received, first = true, true
			continue
		case !first && strings.Contains(line, " message sent "):
			received, first = false, true
			continue
		}
		if !received {
			continue
		}
		if !inHeaders {
			if trimmed == "" {
				continue
			}
			method, rest, _ := strings.Cut(trimmed, " ")
			if method != "INVITE" {
				received = false
				continue
			}
			uri, _, _ := strings.Cut(rest, " ")
			p.requestUser, inHeaders = uriUser(uri), true
			continue
		}
		if trimmed == "" {
			return p
		}
		name, value, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "from", "f":
			p.fromUser = uriUser(addressURI(value))
		case "p-asserted-identity":
			if p.assertedUser == "" {
				p.assertedUser = uriUser(addressURI(value))
			}
		}
	}
	return p
}

// addressURI is the URI of a name-addr or addr-spec header value (the first of a list).
func addressURI(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	} else if i := strings.IndexAny(v, ";,"); i >= 0 {
		v = v[:i]
	}
	return v
}

// uriUser returns the user part of a SIP URI ("sip:+65@host:5060" -> "+65") or the number of
// a tel URI ("tel:+65;npdi" -> "+65"), "" if none.
func uriUser(uri string) string {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return ""
	}
	if strings.EqualFold(strings.TrimSpace(scheme), "tel") {
		user, _, _ := strings.Cut(rest, ";")
		return user
	}
	user, _, ok := strings.Cut(rest, "@")
	if !ok {
		return ""
	}
	user, _, _ = strings.Cut(user, ";") // user parameters
	user, _, _ = strings.Cut(user, ":") // password
	return user
}
