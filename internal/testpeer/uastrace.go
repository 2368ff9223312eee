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

// inviteParties returns the Request-URI user and the From user of the first INVITE received in
// a sipp message trace ("" when absent).
func inviteParties(log string) (requestUser, fromUser string) {
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
			requestUser, inHeaders = uriUser(uri), true
			continue
		}
		if trimmed == "" {
			return requestUser, fromUser
		}
		name, value, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		if n := strings.ToLower(strings.TrimSpace(name)); n == "from" || n == "f" {
			v := strings.TrimSpace(value)
			if i := strings.IndexByte(v, '<'); i >= 0 {
				v = v[i+1:]
				if j := strings.IndexByte(v, '>'); j >= 0 {
					v = v[:j]
				}
			} else if i := strings.IndexByte(v, ';'); i >= 0 {
				v = v[:i]
			}
			fromUser = uriUser(v)
		}
	}
	return requestUser, fromUser
}

// uriUser returns the user part of a SIP URI ("sip:+65@host:5060" -> "+65"), "" if none.
func uriUser(uri string) string {
	_, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return ""
	}
	user, _, ok := strings.Cut(rest, "@")
	if !ok {
		return ""
	}
	user, _, _ = strings.Cut(user, ";") // user parameters
	user, _, _ = strings.Cut(user, ":") // password
	return user
}
