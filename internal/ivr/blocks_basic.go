package ivr

import "strings"

// Play: plays msg, then notifies. Without notify_url it hangs up after the block instead.
var playSpec = blockSpec{parse: func(c *checker) *block {
	msg := c.msg(MaxMsg)
	tag := c.tag()
	target := c.notifyURL("notify_url", false)
	return &block{name: "play", msg: msg, tag: tag, target: target, end: target == "",
		run: func(x *exec, pcm []int16) map[string]string {
			if x.answer() != nil || x.play(pcm) != nil {
				return nil
			}
			if target == "" {
				x.hangup()
			}
			return nil
		}}
}}

// Hangup: plays msg then ends the call; force=enabled ends it at once, even mid-block.
var hangupSpec = blockSpec{
	force: func(p Params) bool { return strings.EqualFold(p["force"], "enabled") },
	parse: func(c *checker) *block {
		force := strings.EqualFold(c.p["force"], "enabled")
		msg := c.msg(MaxMsg)
		tag := c.tag()
		target := c.notifyURL("notify_url", false)
		if force {
			msg = "" // forced: now, no msg
		}
		return &block{name: "hangup", msg: msg, tag: tag, target: target, end: true,
			run: func(x *exec, pcm []int16) map[string]string {
				if len(pcm) > 0 && x.answer() == nil {
					_ = x.play(pcm)
				}
				x.hangup()
				return nil
			}}
	},
}
