package ivr

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// knownStatus reports whether st is a status the API may answer.
func knownStatus(st string) bool {
	if strings.HasPrefix(st, "error_") && strings.HasSuffix(st, "_param_missing") {
		return true
	}
	switch st {
	case StatusOK, StatusInvalidSession, StatusSessionAccessDenied, StatusSessionEnded, StatusSessionNotReady,
		StatusMsgInvalidLength, StatusMsgCannotConvertText, StatusTagInvalidLength, StatusInvalidNotifyURL,
		StatusUnresolvableNotify, StatusMonitorInProgress, StatusDestInvalid, StatusDestNotSupported, StatusCallerIDInvalid,
		StatusInvalidMaxDur, StatusCallLimitReached, StatusOnFailureInvalid, StatusInvalidRoom, StatusSessionNotOnHold,
		StatusInvalidMaxDigits, StatusInvalidTimeout, StatusInvalidAttempts, "error_msg_invalid_xml":
		return true
	}
	return false
}

// FuzzHandle feeds every block arbitrary parameters on a live session: the engine must never
// panic and must answer a status of the spec.
func FuzzHandle(f *testing.F) {
	names := make([]string, 0, len(blocks))
	for n := range blocks {
		names = append(names, n)
	}
	sort.Strings(names)
	f.Add(uint8(0), "dest=%2B6590000001&max_duration=5&msg=hi")
	f.Add(uint8(3), "max_digits=300&timeout=-1&attempts=x&notify_url=http://a.test/")
	f.Add(uint8(7), "dest=room:&on_failure=continue&caller_id=%2B6511111111")
	f.Add(uint8(5), "force=enabled&tag="+strings.Repeat("t", 300))
	f.Fuzz(func(t *testing.T, which uint8, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		r := newRig(t, Config{})
		r.e.d.Telephony, r.e.d.Trunk = &fakeTel{}, true
		go func() { // drain notifications
			for range r.n.ch {
			}
		}()
		c := newFakeCall()
		sid, err := r.e.Incoming(c, "A1", "", "+6511111111", "+6561234567")
		if err != nil {
			t.Fatal(err)
		}
		p := Params{}
		for k := range v {
			if x := v.Get(k); x != "" {
				p[k] = x
			}
		}
		if _, ok := p["session"]; !ok {
			p["session"] = sid
		}
		name := names[int(which)%len(names)]
		st := r.e.Handle(context.Background(), "A1", name, p).Status
		if !knownStatus(st) {
			t.Fatalf("%s %v: status %q", name, p, st)
		}
		c.end()
	})
}
