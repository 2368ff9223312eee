package telephony

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// redirectTarget is where a 3xx response sends the call: the SIP or SIPS Contact with the
// highest q (the first of equals), without its header parameters. ok is false when the
// response has none.
func redirectTarget(res *sip.Response) (uri sip.Uri, ok bool) {
	var values []string
	for _, h := range res.GetHeaders("Contact") {
		values = append(values, h.Value())
	}
	for _, h := range res.GetHeaders("m") { // the compact form
		values = append(values, h.Value())
	}
	return bestContact(values)
}

// bestContact parses Contact header values (each may list several contacts) and returns the
// usable one with the highest q.
func bestContact(values []string) (best sip.Uri, ok bool) {
	bestQ := -1.0
	for _, v := range values {
		for _, c := range splitContacts(v) {
			var uri sip.Uri
			params := sip.NewParams()
			if _, err := sip.ParseAddressValue(c, &uri, &params); err != nil {
				continue
			}
			scheme := strings.ToLower(uri.Scheme)
			if scheme != "sip" && scheme != "sips" || uri.Host == "" || uri.User != "" && !validUser(uri.User) {
				continue
			}
			q := 1.0
			if s, has := params.Get("q"); has {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil || f < 0 || f > 1 {
					continue
				}
				q = f
			}
			if q > bestQ {
				uri.Password = ""
				uri.Headers = nil
				best, bestQ, ok = uri, q, true
			}
		}
	}
	return best, ok
}

// splitContacts splits a Contact header value at the commas that separate contacts (outside
// quotes and angle brackets).
func splitContacts(v string) []string {
	var out []string
	inQuotes, inBrackets, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && inQuotes:
			i++
		case c == '"':
			inQuotes = !inQuotes
		case c == '<' && !inQuotes:
			inBrackets = true
		case c == '>' && !inQuotes:
			inBrackets = false
		case c == ',' && !inQuotes && !inBrackets:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
