package telephony

import "log/slog"

// NameSession makes every later log line of the call carry session, the id of the session it
// belongs to (the ivr engine names it once the session exists), and returns the call's
// logger.
func (l *Leg) NameSession(session string) *slog.Logger {
	l.tag.Set(session)
	return l.log
}

// Logger is the call's logger: its lines carry the call's Call-ID, and its session once named.
func (l *Leg) Logger() *slog.Logger { return l.log }

// Transport is the transport an incoming call's INVITE came over ("UDP", "TCP" or "TLS"); ""
// for a dialled call.
func (l *Leg) Transport() string {
	if l.inc == nil {
		return ""
	}
	return l.inc.transport
}

// Source is the address an incoming call's INVITE came from; "" for a dialled call.
func (l *Leg) Source() string {
	if l.inc == nil {
		return ""
	}
	return l.inc.source.String()
}

// BehindNAT reports whether an incoming call's Via or Contact shows the caller is behind NAT
// (an address other than the one its requests come from); false for a dialled call.
func (l *Leg) BehindNAT() bool { return l.inc != nil && l.inc.natSIP }

// EndedByRemote reports whether the call was ended by the other party (a BYE, a CANCEL)
// rather than by ivrd (Hangup, Reject, an answer that failed, the server's shutdown). It is
// false while the call has not ended.
func (l *Leg) EndedByRemote() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state == stateEnded && l.remoteEnd
}
