package metrics_test

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/metrics"
	"github.com/ivrd/ivrd/internal/metrics/metricstest"
)

// series is one expected value: metric name, labels as name, value pairs.
type series struct {
	name   string
	labels []string
	want   float64
}

// Each group's updates, applied in order, give these values.
func TestUpdates(t *testing.T) {
	cases := []struct {
		name   string
		update func(m *metrics.Metrics)
		want   []series
	}{
		{"calls", func(m *metrics.Metrics) {
			m.Calls.Started(metrics.Inbound)
			m.Calls.Started(metrics.Inbound)
			m.Calls.Started(metrics.Outbound)
			m.Calls.Ended(metrics.Inbound, metrics.CallerHangup)
			m.Calls.Ended(metrics.Outbound, metrics.Unanswered)
			m.Calls.Count(metrics.Inbound, metrics.Refused)
			m.Calls.Count(metrics.Inbound, metrics.Refused)
			m.Calls.Count(metrics.Inbound, metrics.Crashed)
		}, []series{
			{"ivrd_calls_active", []string{"direction", "inbound"}, 1},
			{"ivrd_calls_active", []string{"direction", "outbound"}, 0},
			{"ivrd_calls_total", []string{"direction", "inbound", "outcome", "caller_hangup"}, 1},
			{"ivrd_calls_total", []string{"direction", "inbound", "outcome", "refused"}, 2},
			{"ivrd_calls_total", []string{"direction", "inbound", "outcome", "crash"}, 1},
			{"ivrd_calls_total", []string{"direction", "inbound", "outcome", "ivrd_hangup"}, 0},
			{"ivrd_calls_total", []string{"direction", "outbound", "outcome", "unanswered"}, 1},
		}},
		{"blocks", func(m *metrics.Metrics) {
			m.Blocks.Done("play", "completed")
			m.Blocks.Done("play", "interrupted")
			m.Blocks.Done("play", "completed")
			m.Blocks.Done("transfer", "failed")
		}, []series{
			{"ivrd_blocks_total", []string{"block", "play", "status", "completed"}, 2},
			{"ivrd_blocks_total", []string{"block", "play", "status", "interrupted"}, 1},
			{"ivrd_blocks_total", []string{"block", "transfer", "status", "failed"}, 1},
		}},
		{"api", func(m *metrics.Metrics) {
			m.API.Observe("middle/play", "success_ok", 20*time.Millisecond)
			m.API.Observe("middle/play", "error_invalid_session", time.Millisecond)
			m.API.Observe("middle/play", "success_ok", 3*time.Second)
			m.API.Observe("recordings/list", "success_ok", time.Millisecond)
		}, []series{
			{"ivrd_api_requests_total", []string{"endpoint", "middle/play", "status", "success_ok"}, 2},
			{"ivrd_api_requests_total", []string{"endpoint", "middle/play", "status", "error_invalid_session"}, 1},
			{"ivrd_api_requests_total", []string{"endpoint", "recordings/list", "status", "success_ok"}, 1},
			{"ivrd_api_request_duration_seconds", []string{"endpoint", "middle/play"}, 3},
			{"ivrd_api_request_duration_seconds", []string{"endpoint", "recordings/list"}, 1},
		}},
		{"recordings", func(m *metrics.Metrics) {
			m.Recordings.Started("monitor")
			m.Recordings.Started("monitor")
			m.Recordings.Started("record")
			m.Recordings.Ended("monitor", 1000, false)
			m.Recordings.Ended("record", 300, true)
		}, []series{
			{"ivrd_recordings_active", []string{"kind", "monitor"}, 1},
			{"ivrd_recordings_active", []string{"kind", "record"}, 0},
			{"ivrd_recordings_finished_total", []string{"kind", "monitor"}, 1},
			{"ivrd_recordings_failed_total", []string{"kind", "record"}, 1},
			{"ivrd_recording_bytes_total", []string{"kind", "monitor"}, 1000},
			{"ivrd_recording_bytes_total", []string{"kind", "record"}, 300},
		}},
		{"notifications", func(m *metrics.Metrics) {
			m.Notifications.Attempt(false)
			m.Notifications.Attempt(true)
			m.Notifications.Delivered(1500 * time.Millisecond)
			m.Notifications.Attempt(true)
			m.Notifications.Delivered(10 * time.Millisecond)
			m.Notifications.Attempt(false)
			m.Notifications.GaveUp()
		}, []series{
			{"ivrd_notification_attempts_total", []string{"result", "ok"}, 2},
			{"ivrd_notification_attempts_total", []string{"result", "error"}, 2},
			{"ivrd_notifications_delivered_total", nil, 2},
			{"ivrd_notifications_failed_total", nil, 1},
			{"ivrd_notification_delivery_seconds", nil, 2},
		}},
		{"sources", func(m *metrics.Metrics) {
			m.Read(metrics.Sources{
				RTPFrames:            func() (uint64, uint64, uint64) { return 5000, 7, 3 },
				EncoderQueue:         func() int { return 4 },
				NotificationsPending: func() (int, error) { return 9, nil },
			})
		}, []series{
			{"ivrd_rtp_frames_sent_total", nil, 5000},
			{"ivrd_rtp_frames_late_total", nil, 7},
			{"ivrd_rtp_frames_lost_total", nil, 3},
			{"ivrd_mp3_encoder_queued_blocks", nil, 4},
			{"ivrd_notifications_pending", nil, 9},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := metrics.New()
			c.update(m)
			v := metricstest.Gather(t, m.Gatherer())
			for _, s := range c.want {
				if !v.Has(s.name, s.labels...) {
					t.Errorf("%s%v: no such series", s.name, s.labels)
					continue
				}
				if got := v.Get(s.name, s.labels...); got != s.want {
					t.Errorf("%s%v = %v, want %v", s.name, s.labels, got, s.want)
				}
			}
		})
	}
}

// Nil groups do nothing: parts built without metrics need no checks.
func TestNilGroups(t *testing.T) {
	var m metrics.Metrics
	m.Calls.Started(metrics.Inbound)
	m.Calls.Ended(metrics.Inbound, metrics.CallerHangup)
	m.Calls.Count(metrics.Inbound, metrics.Refused)
	m.Blocks.Done("play", "completed")
	m.API.Observe("middle/play", "success_ok", time.Millisecond)
	m.Recordings.Started("monitor")
	m.Recordings.Ended("monitor", 1, false)
	m.Notifications.Attempt(true)
	m.Notifications.Delivered(time.Second)
	m.Notifications.GaveUp()
}

// A pending count that cannot be read is left out, not served as a number.
func TestPendingUnknown(t *testing.T) {
	m := metrics.New()
	m.Read(metrics.Sources{NotificationsPending: func() (int, error) { return 0, errors.New("store down") }})
	if v := metricstest.Gather(t, m.Gatherer()); v.Has("ivrd_notifications_pending") {
		t.Error("pending served while it cannot be read")
	}
}

// What the handler serves is a valid exposition, by promtool's rules (names, units, help).
func TestHandlerPromtool(t *testing.T) {
	m := metrics.New()
	m.Read(metrics.Sources{
		RTPFrames:            func() (uint64, uint64, uint64) { return 1, 0, 0 },
		EncoderQueue:         func() int { return 0 },
		NotificationsPending: func() (int, error) { return 0, nil },
	})
	m.Calls.Started(metrics.Inbound)
	m.Blocks.Done("play", "completed")
	m.API.Observe("middle/play", "success_ok", time.Millisecond)
	m.Recordings.Started("monitor")
	m.Notifications.Delivered(time.Second)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	v := metricstest.Scrape(t, srv.URL)
	if v.Get("ivrd_calls_active", "direction", "inbound") != 1 || !v.Has("go_goroutines") || !v.Has("process_open_fds") {
		t.Errorf("served: calls_active %v, go_goroutines %v, process_open_fds %v", v.Get("ivrd_calls_active", "direction", "inbound"),
			v.Has("go_goroutines"), v.Has("process_open_fds"))
	}
}
