package api

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/ivrd/ivrd/internal/ivr"
	"github.com/ivrd/ivrd/internal/metrics"
	"github.com/ivrd/ivrd/internal/metrics/metricstest"
)

// Every answered request is counted by endpoint and status, and timed by endpoint; unknown
// paths (HTTP 404) are not endpoints.
func TestRequestMetrics(t *testing.T) {
	m := metrics.New()
	n := notifier{ch: make(chan url.Values, 100)}
	e := ivr.New(ivr.Config{}, ivr.Deps{Prompter: prompter{}, Recorders: recorders{}, Notifier: n, Resolver: resolver{}})
	f := newFixtureWith(t, e, n, func(h *Handler, _ *http.ServeMux) { h.Metrics = m.API })
	sid, _ := f.session(t)
	requests := []struct {
		path, body string
		want       string
	}{
		{"/open/ivr/middle/play", "app_id=A1&access_token=tok1&session=" + sid + "&msg=hi&notify_url=http://app.test/n", ivr.StatusOK},
		{"/open/ivr/middle/play", "app_id=A1&access_token=bad&session=" + sid, ivr.StatusInvalidAccessToken},
		{"/open/ivr/middle/play", "app_id=A1&access_token=tok1&session=nope", ivr.StatusInvalidSession},
		{"/open/ivr/middle/play", "app_id=A1&access_token=tok1&session=nope", ivr.StatusInvalidSession},
		{"/open/ivr/end/hangup", "access_token=tok1", ivr.Missing("app_id")},
		{"/open/ivr/start/dial", "app_id=broken&access_token=x", ivr.StatusInternal},
	}
	for _, r := range requests {
		if st := f.post(t, r.path, r.body); st != r.want {
			t.Fatalf("%s %s: %s, want %s", r.path, r.body, st, r.want)
		}
	}
	if res, err := http.Get(f.srv.URL + "/open/ivr/middle/nothing"); err != nil || res.StatusCode != 404 {
		t.Fatalf("unknown path: %v %v", res, err)
	}
	v := metricstest.Gather(t, m.Gatherer())
	for _, c := range []struct {
		endpoint, status string
		want             float64
	}{
		{"middle/play", ivr.StatusOK, 1},
		{"middle/play", ivr.StatusInvalidAccessToken, 1},
		{"middle/play", ivr.StatusInvalidSession, 2},
		{"end/hangup", ivr.Missing("app_id"), 1},
		{"start/dial", ivr.StatusInternal, 1},
	} {
		if got := v.Get("ivrd_api_requests_total", "endpoint", c.endpoint, "status", c.status); got != c.want {
			t.Errorf("api_requests_total{%s,%s} = %v, want %v", c.endpoint, c.status, got, c.want)
		}
	}
	if got := v.Sum("ivrd_api_requests_total"); got != float64(len(requests)) {
		t.Errorf("%v requests counted, want %d", got, len(requests))
	}
	if got := v.Get("ivrd_api_request_duration_seconds", "endpoint", "middle/play"); got != 4 {
		t.Errorf("middle/play timed %v times, want 4", got)
	}
}
