package main

import (
	"math"
	"os"
	"sync"
	"time"
)

// cpuWatch samples, twice a second while a batch of calls runs, how many cores the server
// measured (ivrd, with its sidecars when it has any; in the peer phase rtpengine and Kamailio), sipp, the harness and everything
// else on the machine use. The machine is shared (other
// sessions run builds and tests on it), so a late frame can have a cause outside ivrd; the
// timeline shows whether it coincided with a burst of other work.
type cpuWatch struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples [][5]float64 // seconds since origin, measured server, sipp, harness, others (cores)
}

const cpuWatchEvery = 500 * time.Millisecond

func watchCPU(origin time.Time, serverPIDs []int, beside []sidecar, sippPID int) *cpuWatch {
	w := &cpuWatch{stop: make(chan struct{}), done: make(chan struct{})}
	readServer := func() (procSample, error) {
		s, err := readProcs(serverPIDs)
		for _, b := range readSidecars(beside) {
			s.cpu += b.cpu
		}
		return s, err
	}
	go func() {
		defer close(w.done)
		self := os.Getpid()
		m0 := readMachine()
		i0, _ := readServer()
		s0, _ := readProc(sippPID)
		h0, _ := readProc(self)
		t := time.NewTicker(cpuWatchEvery)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			m1 := readMachine()
			i1, err1 := readServer()
			s1, err2 := readProc(sippPID)
			h1, _ := readProc(self)
			if err1 != nil || err2 != nil {
				return
			}
			iv, sp, hs := cpuShare(i0, i1), cpuShare(s0, s1), cpuShare(h0, h1)
			all := busyCores(m0, m1, numCPU())
			r2 := func(v float64) float64 { return math.Round(v*100) / 100 }
			w.mu.Lock()
			w.samples = append(w.samples, [5]float64{r2(i1.at.Sub(origin).Seconds()), r2(iv), r2(sp), r2(hs), r2(max(all-iv-sp-hs, 0))})
			w.mu.Unlock()
			m0, i0, s0, h0 = m1, i1, s1, h1
		}
	}()
	return w
}

func (w *cpuWatch) finish() [][5]float64 {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples
}

// interference is the heaviest use of the machine by other processes within a second of
// second s (seconds since origin), in cores.
func interference(samples [][5]float64, s int) float64 {
	worst := 0.0
	for _, x := range samples {
		if x[0] >= float64(s)-1 && x[0] <= float64(s)+2 {
			worst = max(worst, x[4])
		}
	}
	return worst
}
