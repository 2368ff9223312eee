// Package metricstest reads metric values in tests: gathered from a registry, or parsed from
// what /metrics served; and checks an exposition with promtool.
package metricstest

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Values are metric families by name.
type Values map[string]*dto.MetricFamily

// Gather reads g's current values.
func Gather(t testing.TB, g prometheus.Gatherer) Values {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	v := Values{}
	for _, f := range fams {
		v[f.GetName()] = f
	}
	return v
}

// Parse reads an exposition in the Prometheus text format.
func Parse(t testing.TB, text string) Values {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, text)
	}
	return Values(fams)
}

// Get returns the value of the series of name with exactly these labels (name, value pairs;
// the series' other labels are not compared): a counter's or gauge's value, a histogram's
// count of observations. A series not there is 0.
func (v Values) Get(name string, labels ...string) float64 {
	f := v[name]
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return 0
}

// Has reports whether name has a series with these labels.
func (v Values) Has(name string, labels ...string) bool {
	for _, m := range v[name].GetMetric() {
		if matches(m, labels) {
			return true
		}
	}
	return false
}

// Sum adds the values of every series of name.
func (v Values) Sum(name string) float64 {
	s := 0.0
	for _, m := range v[name].GetMetric() {
		s += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return s
}

func matches(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] {
				found = l.GetValue() == labels[i+1]
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Scrape GETs an exposition from url (ivrd's /metrics), fails the test unless it is served
// (HTTP 200) and passes promtool, and returns its values.
func Scrape(t testing.TB, url string) Values {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %v\n%s", url, res.StatusCode, err, b)
	}
	Promtool(t, string(b))
	return Parse(t, string(b))
}

// Promtool runs `promtool check metrics` (Debian's prometheus package) on an exposition and
// fails the test with what it says when it finds anything.
func Promtool(t testing.TB, text string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus; scripts/install-deps.sh test installs it): %v", err)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || strings.TrimSpace(out.String()) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
}
