package testpeer

import (
	"strconv"
	"strings"
	"time"
)

// sipp's -trace_msg file is a sequence of blocks like
//
//	----------------------------------------------- 2026-11-10 10:00:00.123456
//	UDP message received [441] bytes :
//
//	SIP/2.0 180 Ringing
//	Via: ...
//	CSeq: 1 INVITE
//
// ("UDP message sent (441 bytes):" for ours). We only need each message's direction, first
// line and CSeq method.

// traceMsg is one SIP message in sipp's trace.
type traceMsg struct {
	Received bool
	Start    string    // request or status line
	Method   string    // CSeq method
	At       time.Time // sipp's time stamp (local time, microseconds); zero if unreadable
	text     string    // the whole message
}

// traceTime is the layout of sipp's time stamps.
const traceTime = "2006-01-02 15:04:05.000000"

// parseTrace extracts the messages of a sipp message trace. Unknown text is skipped.
func parseTrace(log string) []traceMsg {
	var msgs []traceMsg
	var cur *traceMsg
	var at time.Time
	inHeaders := false
	for line := range strings.Lines(log) {
		line = strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "-----------------------------------------------"):
			cur, inHeaders = nil, false
			at, _ = time.ParseInLocation(traceTime, strings.TrimSpace(strings.TrimLeft(line, "-")), time.Local)
			continue
		case cur == nil && strings.Contains(line, " message received "):
			msgs = append(msgs, traceMsg{Received: true, At: at})
			cur = &msgs[len(msgs)-1]
			continue
		case cur == nil && strings.Contains(line, " message sent "):
			msgs = append(msgs, traceMsg{At: at})
			cur = &msgs[len(msgs)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if cur.Start != "" || trimmed != "" {
			cur.text += line + "\n"
		}
		if cur.Start == "" {
			if trimmed != "" {
				cur.Start = trimmed
				inHeaders = true
			}
			continue
		}
		if !inHeaders {
			continue
		}
		if trimmed == "" {
			inHeaders = false
			continue
		}
		name, value, ok := strings.Cut(trimmed, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "CSeq") {
			if f := strings.Fields(value); len(f) == 2 {
				cur.Method = strings.ToUpper(f[1])
			}
		}
	}
	return msgs
}

// Message is one SIP message of a sipp call, as its message trace shows it.
type Message struct {
	Received bool      // sipp received it (else sent it)
	Start    string    // request or status line
	Method   string    // CSeq method
	Status   int       // status code of a response; 0 for a request
	At       time.Time // sipp's time stamp
	Text     string    // the whole message, headers and body
}

// Messages returns the SIP messages of a sipp message trace (Result.Trace), in order.
func Messages(trace string) []Message {
	var out []Message
	for _, m := range parseTrace(trace) {
		out = append(out, Message{Received: m.Received, Start: m.Start, Method: m.Method, Status: m.statusCode(), At: m.At, Text: m.text})
	}
	return out
}

// Header returns the value of the message's first header called name (case-insensitive;
// compact forms are not expanded), and whether there is one.
func (m Message) Header(name string) (string, bool) {
	for line := range strings.Lines(m.Text) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break // the body follows
		}
		n, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(n), name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// Body returns the message's body.
func (m Message) Body() string {
	if _, b, ok := strings.Cut(m.Text, "\n\n"); ok {
		return strings.TrimSpace(b)
	}
	return ""
}

// statusCode returns the code of a status line, or 0 for a request.
func (m traceMsg) statusCode() int {
	rest, ok := strings.CutPrefix(m.Start, "SIP/2.0 ")
	if !ok || len(rest) < 3 {
		return 0
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil {
		return 0
	}
	return code
}

// outcome is a call's fate as its trace tells it.
type outcome struct {
	status        int       // final status of the INVITE
	answeredAt    time.Time // when the 200 OK arrived
	byeFromServer bool
	byeAt         time.Time // when the first BYE was sent or received
}

func readOutcome(msgs []traceMsg) outcome {
	var o outcome
	for _, m := range msgs {
		if strings.HasPrefix(m.Start, "BYE ") {
			if o.byeAt.IsZero() {
				o.byeAt = m.At
			}
			o.byeFromServer = o.byeFromServer || m.Received
		}
		if !m.Received {
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
