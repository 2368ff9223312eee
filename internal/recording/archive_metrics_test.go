package recording

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/metrics"
	"github.com/ivrd/ivrd/internal/metrics/metricstest"
	"github.com/ivrd/ivrd/internal/testlog"
)

// refusingBlobs is a blob store that refuses every file.
type refusingBlobs struct{ Blobs }

func (refusingBlobs) PutFile(key, src string) error { return errors.New("store refuses " + key) }

// The archive counts recordings being made, finished, failed and the bytes stored; a take's
// lines go to its call's logger.
func TestArchiveMetrics(t *testing.T) {
	cases := []struct {
		name     string
		refuse   bool // the blob store refuses the file
		finishes int
		finished float64
		failed   float64
		stored   bool
	}{
		{name: "stored", finishes: 1, finished: 1, stored: true},
		{name: "finished twice", finishes: 2, finished: 1, stored: true},
		{name: "store refuses", refuse: true, finishes: 1, failed: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newArchiveRig(t)
			m := metrics.New()
			r.a.metrics = m.Recordings
			if c.refuse {
				r.a.blobs = refusingBlobs{r.blobs}
			}
			log, buf := testlog.NewJSON()
			start := time.Now()
			in := info("rec-m1", KindMonitor, start, Mono)
			in.Log = log.With("call_id", "c-1")
			tk, err := r.a.Start(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := metricstest.Gather(t, m.Gatherer()).Get("ivrd_recordings_active", "kind", KindMonitor); got != 1 {
				t.Fatalf("active while recording: %v", got)
			}
			g := tone{freq: 1000, amp: 8000}
			for range 50 {
				tk.Inbound(g.frame(160), start)
				start = start.Add(20 * time.Millisecond)
			}
			var url string
			for range c.finishes {
				if u, _ := tk.Finish(start); u != "" {
					url = u
				}
			}
			v := metricstest.Gather(t, m.Gatherer())
			var size float64
			if st, err := os.Stat(filepath.Join(r.blobs.Dir, "rec-m1.mp3")); err == nil {
				size = float64(st.Size())
			}
			if v.Get("ivrd_recordings_active", "kind", KindMonitor) != 0 || v.Get("ivrd_recordings_finished_total", "kind", KindMonitor) != c.finished ||
				v.Get("ivrd_recordings_failed_total", "kind", KindMonitor) != c.failed || (url != "") != c.stored ||
				v.Get("ivrd_recording_bytes_total", "kind", KindMonitor) != size || (c.stored && size == 0) {
				t.Errorf("active %v, finished %v, failed %v, bytes %v (file %v), url %q",
					v.Get("ivrd_recordings_active", "kind", KindMonitor), v.Get("ivrd_recordings_finished_total", "kind", KindMonitor),
					v.Get("ivrd_recordings_failed_total", "kind", KindMonitor), v.Get("ivrd_recording_bytes_total", "kind", KindMonitor), size, url)
			}
			lines, err := testlog.Lines(buf.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lines {
				if l["call_id"] != "c-1" {
					t.Errorf("a recording line without its call: %v", l)
				}
			}
			if len(lines) == 0 {
				t.Error("the take logged nothing")
			}
		})
	}
}
