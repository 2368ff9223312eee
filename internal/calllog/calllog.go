// Package calllog makes every log line of a call carry the session it belongs to. The SIP
// layer makes a call's logger when the INVITE arrives, before the engine has named the call's
// session; a Tag attached to that logger takes the session once it exists, and every line
// logged from then on (by telephony, the engine, the recorder: whoever holds the logger)
// carries it under Key.
package calllog

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// Key is the attribute that names a line's session.
const Key = "session"

// Tag is a call's session, set once it is known. Its zero value has none. Safe for
// concurrent use.
type Tag struct{ id atomic.Pointer[string] }

// Set names the session; lines logged from now on through the tag's loggers carry it.
func (t *Tag) Set(session string) {
	if session == "" {
		t.id.Store(nil)
		return
	}
	t.id.Store(&session)
}

// Session returns the session named so far, "" before.
func (t *Tag) Session() string {
	if p := t.id.Load(); p != nil {
		return *p
	}
	return ""
}

// Logger returns l whose lines carry the tag's session, once set, as their last attribute
// (inside the groups l.WithGroup opened, if any).
func (t *Tag) Logger(l *slog.Logger) *slog.Logger {
	return slog.New(&handler{next: l.Handler(), tag: t})
}

type handler struct {
	next slog.Handler
	tag  *Tag
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if id := h.tag.Session(); id != "" {
		r = r.Clone() // the record's attributes may be shared with the caller's copy
		r.AddAttrs(slog.String(Key, id))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(attrs), tag: h.tag}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), tag: h.tag}
}

type ctxKey struct{}

// WithSession returns ctx saying that the calls made under it belong to session: a call
// placed for a session (Dial, Transfer) logs with it from its first line.
func WithSession(ctx context.Context, session string) context.Context {
	return context.WithValue(ctx, ctxKey{}, session)
}

// Session returns the session ctx names, or "".
func Session(ctx context.Context) string {
	s, _ := ctx.Value(ctxKey{}).(string)
	return s
}
