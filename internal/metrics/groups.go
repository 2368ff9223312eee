package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Directions of a call (label direction).
const (
	Inbound  = "inbound"  // a caller called ivrd
	Outbound = "outbound" // a Dial block called out
)

// Outcomes of a call (label outcome of ivrd_calls_total).
const (
	Refused      = "refused"        // refused before it had a session: unknown number, a limit, the disk (inbound only)
	Unanswered   = "unanswered"     // ended without being answered
	CallerHangup = "caller_hangup"  // answered; the caller hung up
	CalleeHangup = "callee_hangup"  // answered; the party a Dial called hung up
	IvrdHangup   = "ivrd_hangup"    // answered; ivrd hung up (Hangup, idle timeout, max_duration, shutdown)
	FarEndHangup = "far_end_hangup" // answered; the far end of a Transfer hung up (ivrd then hung up the caller)
	Crashed      = "crash"          // ivrd stopped without ending it; counted when the next start settles it
)

// outcomesOf lists the outcomes a call of each direction can have: their series exist from
// the start, at 0.
var outcomesOf = map[string][]string{
	Inbound:  {Refused, Unanswered, CallerHangup, IvrdHangup, FarEndHangup, Crashed},
	Outbound: {Unanswered, CalleeHangup, IvrdHangup, FarEndHangup, Crashed},
}

// Calls counts calls: those up now and those ended, by how.
type Calls struct {
	active *prometheus.GaugeVec
	total  *prometheus.CounterVec
}

func newCalls(reg prometheus.Registerer) *Calls {
	c := &Calls{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "calls_active",
			Help: "Calls with a session whose line is not down yet (ringing, being dialled or up)."}, []string{"direction"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "calls_total",
			Help: "Calls ended, by direction and outcome."}, []string{"direction", "outcome"}),
	}
	reg.MustRegister(c.active, c.total)
	for d, os := range outcomesOf {
		c.active.WithLabelValues(d)
		for _, o := range os {
			c.total.WithLabelValues(d, o)
		}
	}
	return c
}

// Started counts a call up from now (its session exists).
func (c *Calls) Started(direction string) {
	if c != nil {
		c.active.WithLabelValues(direction).Inc()
	}
}

// Ended counts a call Started in this process as over.
func (c *Calls) Ended(direction, outcome string) {
	if c != nil {
		c.active.WithLabelValues(direction).Dec()
		c.total.WithLabelValues(direction, outcome).Inc()
	}
}

// Count counts a call that was never Started in this process: refused before it had a
// session, or settled after a crash.
func (c *Calls) Count(direction, outcome string) {
	if c != nil {
		c.total.WithLabelValues(direction, outcome).Inc()
	}
}

// Blocks counts the blocks that ran, by name and how they ended.
type Blocks struct {
	total *prometheus.CounterVec
}

func newBlocks(reg prometheus.Registerer) *Blocks {
	b := &Blocks{total: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "blocks_total",
		Help: "Blocks that ran to their end, by block and status (completed, interrupted, failed)."}, []string{"block", "status"})}
	reg.MustRegister(b.total)
	return b
}

// Done counts a block that finished with status.
func (b *Blocks) Done(block, status string) {
	if b != nil {
		b.total.WithLabelValues(block, status).Inc()
	}
}

// API counts the API's requests and times them.
type API struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newAPI(reg prometheus.Registerer) *API {
	a := &API{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "api_requests_total",
			Help: "API requests answered, by endpoint (e.g. middle/play, recordings/list) and status (success_ok, error_...)."},
			[]string{"endpoint", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "api_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer (msg synthesis or download included), by endpoint.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"endpoint"}),
	}
	reg.MustRegister(a.total, a.duration)
	return a
}

// Observe counts one answered request.
func (a *API) Observe(endpoint, status string, took time.Duration) {
	if a != nil {
		a.total.WithLabelValues(endpoint, status).Inc()
		a.duration.WithLabelValues(endpoint).Observe(took.Seconds())
	}
}

// Recordings counts recordings being made and made.
type Recordings struct {
	active   *prometheus.GaugeVec
	finished *prometheus.CounterVec
	failed   *prometheus.CounterVec
	bytes    *prometheus.CounterVec
}

func newRecordings(reg prometheus.Registerer) *Recordings {
	kind := []string{"kind"}
	r := &Recordings{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "recordings_active",
			Help: "Recordings being made, by kind (monitor, record)."}, kind),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "recordings_finished_total",
			Help: "Recordings finished and stored, by kind."}, kind),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "recordings_failed_total",
			Help: "Recordings whose writing, storing or cataloguing failed (what reached the disk may still be stored), by kind."}, kind),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "recording_bytes_total",
			Help: "MP3 bytes of the recordings stored, by kind."}, kind),
	}
	reg.MustRegister(r.active, r.finished, r.failed, r.bytes)
	return r
}

// Started counts a recording being made from now.
func (r *Recordings) Started(kind string) {
	if r != nil {
		r.active.WithLabelValues(kind).Inc()
	}
}

// Ended counts a Started recording as over: stored bytes (0: nothing stored), and whether
// anything failed on the way.
func (r *Recordings) Ended(kind string, stored int64, failed bool) {
	if r == nil {
		return
	}
	r.active.WithLabelValues(kind).Dec()
	r.bytes.WithLabelValues(kind).Add(float64(stored))
	if failed {
		r.failed.WithLabelValues(kind).Inc()
	} else {
		r.finished.WithLabelValues(kind).Inc()
	}
}

// Notifications counts notification deliveries (ivrd_notifications_pending is a Source).
type Notifications struct {
	delivered prometheus.Counter
	failed    prometheus.Counter
	attempts  *prometheus.CounterVec
	latency   prometheus.Histogram
}

// Results of a delivery attempt (label result).
const (
	AttemptOK    = "ok"    // the app answered 2xx
	AttemptError = "error" // anything else: a connection failure, a timeout, another status
)

func newNotifications(reg prometheus.Registerer) *Notifications {
	n := &Notifications{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "notifications_delivered_total",
			Help: "Notifications delivered (the app answered 2xx)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "notifications_failed_total",
			Help: "Notifications given up: still undelivered 24 h after they were queued."}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "notification_attempts_total",
			Help: "Delivery attempts, by result (ok, error)."}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "notification_delivery_seconds",
			Help:    "Time from a notification's queueing to its delivery, retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400}}),
	}
	reg.MustRegister(n.delivered, n.failed, n.attempts, n.latency)
	n.attempts.WithLabelValues(AttemptOK)
	n.attempts.WithLabelValues(AttemptError)
	return n
}

// Attempt counts one delivery attempt.
func (n *Notifications) Attempt(ok bool) {
	if n == nil {
		return
	}
	if ok {
		n.attempts.WithLabelValues(AttemptOK).Inc()
	} else {
		n.attempts.WithLabelValues(AttemptError).Inc()
	}
}

// Delivered counts a notification delivered after it had waited since queueing.
func (n *Notifications) Delivered(since time.Duration) {
	if n != nil {
		n.delivered.Inc()
		n.latency.Observe(since.Seconds())
	}
}

// GaveUp counts a notification given up.
func (n *Notifications) GaveUp() {
	if n != nil {
		n.failed.Inc()
	}
}
