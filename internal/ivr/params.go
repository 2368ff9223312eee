package ivr

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Params are a request's decoded parameters. The API layer has already dropped empty values
// (an empty value counts as absent) and checked that every value is valid UTF-8.
type Params map[string]string

// Limits of the API.
const (
	MaxMsgMonitor   = 500  // seed: Monitor msg
	MaxMsg          = 1000 // every other block's msg
	MaxTag          = 256
	MaxNotifyURLLen = 4000
)

// checker validates a block's parameters in the order of the block's table; the first failure
// wins. Each step is skipped once a status is set.
type checker struct {
	ctx    context.Context
	e      *Engine
	p      Params
	status string
}

func (c *checker) fail(status string) {
	if c.status == "" {
		c.status = status
	}
}

// msg checks a msg parameter: length on the raw value (in characters), then markup via the
// Prompter's fast Check.
func (c *checker) msg(limit int) string {
	m := c.p["msg"]
	if c.status != "" || m == "" {
		return m
	}
	if utf8.RuneCountInString(m) > limit {
		c.fail(StatusMsgInvalidLength)
		return m
	}
	if err := c.e.d.Prompter.Check(m); err != nil {
		c.fail(statusOf(err, StatusMsgCannotConvertText))
	}
	return m
}

func (c *checker) tag() string {
	t := c.p["tag"]
	if c.status == "" && utf8.RuneCountInString(t) > MaxTag {
		c.fail(StatusTagInvalidLength)
	}
	return t
}

// notifyURL checks a notify URL parameter (name is usually "notify_url").
func (c *checker) notifyURL(name string, required bool) string {
	u := c.p[name]
	if c.status != "" {
		return u
	}
	if u == "" {
		if required {
			c.fail(Missing(name))
		}
		return ""
	}
	if st := c.e.checkNotifyURL(c.ctx, u); st != "" {
		c.fail(st)
	}
	return u
}

// oneOf checks an enumerated optional parameter.
func (c *checker) oneOf(name, def, status string, allowed ...string) string {
	v := c.p[name]
	if v == "" {
		return def
	}
	if c.status != "" {
		return v
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	c.fail(status)
	return v
}

// The channels values of Monitor and Record (ours).
const (
	ChannelsMono = "mono" // both directions mixed into one channel (the default)
	ChannelsDual = "dual" // stereo: the caller left, everything ivrd sends the caller right
)

// ChannelsName is how the API names a recording of n channels: mono or dual.
func ChannelsName(n int) string {
	if n == 2 {
		return ChannelsDual
	}
	return ChannelsMono
}

// channels checks the optional channels parameter (ours, after a block's documented ones) and
// returns the recording's channel count: 1 for mono, 2 for dual.
func (c *checker) channels() int {
	if c.oneOf("channels", ChannelsMono, StatusInvalidChannels, ChannelsMono, ChannelsDual) == ChannelsDual {
		return 2
	}
	return 1
}

// checkNotifyURL returns "" when u is an absolute http(s) URL of at most 4000 characters whose
// host resolves, to an address the outbound policy allows, else the status.
func (e *Engine) checkNotifyURL(ctx context.Context, u string) string {
	if len(u) > MaxNotifyURLLen {
		return StatusInvalidNotifyURL
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.Hostname() == "" {
		return StatusInvalidNotifyURL
	}
	host := pu.Hostname()
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		if e.d.Resolver == nil {
			return ""
		}
		addrs, err = e.d.Resolver.LookupHost(ctx, host)
		if err != nil || len(addrs) == 0 {
			return StatusUnresolvableNotify
		}
	}
	if e.d.Outbound != nil {
		if err := e.d.Outbound.CheckURL(pu, addrs); err != nil {
			e.log.Warn("notify_url refused", "host", pu.Host, "err", err)
			return StatusInvalidNotifyURL
		}
	}
	return ""
}

// isE164 reports whether n is a '+' and 6 to 15 digits.
func isE164(n string) bool {
	d, ok := strings.CutPrefix(n, "+")
	if !ok || len(d) < 6 || len(d) > 15 || d[0] == '0' {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// integer checks an optional whole-number parameter within [lo, hi].
func (c *checker) integer(name string, def, lo, hi int, status string) int {
	v := c.p[name]
	if v == "" || c.status != "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		c.fail(status)
		return def
	}
	return n
}

// callerID checks an optional caller_id: E.164.
func (c *checker) callerID() string {
	v := c.p["caller_id"]
	if v != "" && c.status == "" && !isE164(v) {
		c.fail("error_caller_id_invalid")
	}
	return v
}
