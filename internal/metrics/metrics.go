// Package metrics defines ivrd's Prometheus metrics, on a registry of ivrd's own (not the
// process-wide default), served at /metrics. Each group of metrics is a small type whose
// methods the code that observes it calls; a nil group does nothing, so parts built without
// metrics (tests, admin commands) need no checks. Values that change on hot paths (every RTP
// frame, every encoded block) are kept by their owners as plain atomics and read here only
// when scraped (Sources).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric of ivrd's own.
const namespace = "ivrd"

// Metrics is ivrd's registry and its groups.
type Metrics struct {
	reg           *prometheus.Registry
	Calls         *Calls
	Blocks        *Blocks
	API           *API
	Recordings    *Recordings
	Notifications *Notifications
}

// New makes the registry with every group, and the Go runtime's and the process's metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Metrics{
		reg:           reg,
		Calls:         newCalls(reg),
		Blocks:        newBlocks(reg),
		API:           newAPI(reg),
		Recordings:    newRecordings(reg),
		Notifications: newNotifications(reg),
	}
}

// Handler serves the registry in the Prometheus text format (or OpenMetrics, when asked).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Gatherer gives the current values (tests).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Sources are values their owners keep, read when /metrics is scraped. A nil func is not
// served.
type Sources struct {
	// RTPFrames: 20 ms RTP frames sent since start, those sent late (more than a pacer tick
	// after they were due), and those due and never sent (skipped when the sending schedule
	// restarted after a stall, or whose send failed).
	RTPFrames func() (sent, late, lost uint64)
	// EncoderQueue: blocks of PCM (a mix interval each, 250 ms by default) waiting for the MP3
	// encoding threads or being encoded.
	EncoderQueue func() int
	// NotificationsPending: notifications queued and not yet delivered or given up (an error:
	// not known now, the sample is left out).
	NotificationsPending func() (int, error)
}

// Read registers the sources (once).
func (m *Metrics) Read(src Sources) {
	if f := src.RTPFrames; f != nil {
		m.reg.MustRegister(rtpCollector{f})
	}
	if f := src.EncoderQueue; f != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace,
			Name: "mp3_encoder_queued_blocks",
			Help: "Blocks of PCM (one mix interval each) waiting for the MP3 encoding threads or being encoded.",
		}, func() float64 { return float64(f()) }))
	}
	if f := src.NotificationsPending; f != nil {
		m.reg.MustRegister(pendingCollector{f})
	}
}

var (
	rtpSentDesc = prometheus.NewDesc(namespace+"_rtp_frames_sent_total",
		"20 ms RTP frames sent to callers (by the pacers and the bridge and room mixers).", nil, nil)
	rtpLateDesc = prometheus.NewDesc(namespace+"_rtp_frames_late_total",
		"RTP frames sent more than 5 ms (a pacer tick) after they were due.", nil, nil)
	rtpLostDesc = prometheus.NewDesc(namespace+"_rtp_frames_lost_total",
		"RTP frames due and never sent: skipped when sending restarted its schedule after a stall, or whose send failed.", nil, nil)
	pendingDesc = prometheus.NewDesc(namespace+"_notifications_pending",
		"Notifications queued (in the outbox, or in memory while the store cannot take them) and not yet delivered or given up.", nil, nil)
)

// rtpCollector reads the RTP frame counters once per scrape.
type rtpCollector struct {
	read func() (sent, late, lost uint64)
}

func (c rtpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rtpSentDesc
	ch <- rtpLateDesc
	ch <- rtpLostDesc
}

func (c rtpCollector) Collect(ch chan<- prometheus.Metric) {
	sent, late, lost := c.read()
	ch <- prometheus.MustNewConstMetric(rtpSentDesc, prometheus.CounterValue, float64(sent))
	ch <- prometheus.MustNewConstMetric(rtpLateDesc, prometheus.CounterValue, float64(late))
	ch <- prometheus.MustNewConstMetric(rtpLostDesc, prometheus.CounterValue, float64(lost))
}

// pendingCollector reads the outbox's pending count; when it cannot be read the sample is
// left out rather than reported as a number it is not.
type pendingCollector struct {
	read func() (int, error)
}

func (c pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDesc }

func (c pendingCollector) Collect(ch chan<- prometheus.Metric) {
	if n, err := c.read(); err == nil {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n))
	}
}
