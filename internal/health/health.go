// Package health answers ivrd's probes: liveness (/healthz: the process serves HTTP) and
// readiness (/readyz: it can take calls now).
package health

import (
	"io"
	"net/http"
	"strings"
)

// A Check names one condition for taking calls, and says what is wrong with it now ("" when
// nothing is).
type Check struct {
	Name  string
	Probe func() string
}

// Live answers 200 "ok" whenever the process answers at all: a failing liveness probe means
// ivrd should be restarted, which no problem of its disk, store or network would mend (and
// which would cut the calls up).
func Live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// Ready answers 200 "ready" when every check passes, else 503 with one line per failing check,
// "<name>: <problem>", in the order given. Checks run on every request, one after another.
func Ready(checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var problems []string
		for _, c := range checks {
			if p := c.Probe(); p != "" {
				problems = append(problems, c.Name+": "+p)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready\n"+strings.Join(problems, "\n")+"\n")
			return
		}
		io.WriteString(w, "ready\n")
	})
}

// Err turns an error into a Probe's answer.
func Err(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
