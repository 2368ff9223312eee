package notify

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/metrics"
	"github.com/ivrd/ivrd/internal/metrics/metricstest"
	"github.com/ivrd/ivrd/internal/testlog"
)

// Deliveries are counted (attempts by result, delivered with their latency, given up) and
// Pending counts what is still owed; delivery lines name the session.
func TestDeliveryMetrics(t *testing.T) {
	cases := []struct {
		name      string
		fails     int           // the app answers 500 to this many attempts, then 200
		maxAge    time.Duration // 0: default (nothing is given up)
		delivered float64
		gaveUp    float64
		attemptOK float64
	}{
		{name: "first attempt", fails: 0, delivered: 1, attemptOK: 1},
		{name: "after two failures", fails: 2, delivered: 1, attemptOK: 1},
		{name: "given up", fails: 1000, maxAge: 50 * time.Millisecond, gaveUp: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t, "")
			rcv := newReceiver(t, testToken, func(h hit, n int) int {
				if n < c.fails {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			})
			m := metrics.New()
			log, buf := testlog.NewJSON()
			o := testOptions()
			o.Metrics, o.Log, o.MaxAge = m.Notifications, log, c.maxAge
			q := New(st, o)
			if err := q.NotifySession("APtest", "S-metrics", rcv.URL+"/n", url.Values{"a": {"1"}}); err != nil {
				t.Fatal(err)
			}
			if n, err := q.Pending(); err != nil || n != 1 {
				t.Fatalf("pending before Run: %d, %v", n, err)
			}
			run(t, q)
			eventually(t, 10*time.Second, "the notification settled", func() bool {
				v := metricstest.Gather(t, m.Gatherer())
				return v.Get("ivrd_notifications_delivered_total")+v.Get("ivrd_notifications_failed_total") == 1
			})
			v := metricstest.Gather(t, m.Gatherer())
			attempts := float64(len(rcv.all()))
			if v.Get("ivrd_notifications_delivered_total") != c.delivered || v.Get("ivrd_notifications_failed_total") != c.gaveUp ||
				v.Get("ivrd_notification_attempts_total", "result", metrics.AttemptOK) != c.attemptOK ||
				v.Get("ivrd_notification_attempts_total", "result", metrics.AttemptError) != attempts-c.attemptOK ||
				v.Get("ivrd_notification_delivery_seconds") != c.delivered {
				t.Errorf("delivered %v, failed %v, attempts ok %v error %v (the app saw %v), latencies %v",
					v.Get("ivrd_notifications_delivered_total"), v.Get("ivrd_notifications_failed_total"),
					v.Get("ivrd_notification_attempts_total", "result", metrics.AttemptOK),
					v.Get("ivrd_notification_attempts_total", "result", metrics.AttemptError), attempts,
					v.Get("ivrd_notification_delivery_seconds"))
			}
			eventually(t, 5*time.Second, "nothing pending", func() bool { n, err := q.Pending(); return err == nil && n == 0 })
			lines, err := testlog.Lines(buf.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lines {
				if l["delivery_id"] != nil && l["session"] != "S-metrics" {
					t.Errorf("delivery line without its session: %v", l)
				}
			}
		})
	}
}
