package main

import (
	"log"
	"runtime"
	"syscall"
)

// loadNice is the niceness of sipp and of the harness's RTP capture (-load-nice). On a
// benchmark machine they take about a quarter of a core each at 1,000 calls beside ivrd; at
// equal priority the kernel delays ivrd's sending threads whenever all of them together ask
// for more than the cores. A user's callers run on other machines, so here they yield:
// ivrd is measured as it would run alone, and sipp's and the harness's CPU is still
// reported. The capture loses nothing by waiting: arrival times are the kernel's receive
// timestamps and its socket buffers seconds of packets.
var loadNice int

// niceThisThread locks the calling goroutine to its OS thread for good and sets that
// thread's niceness (Linux niceness is per thread). Threads the Go runtime starts while on a
// locked thread come from its template thread, so nothing else inherits it.
func niceThisThread(n int) {
	if n == 0 {
		return
	}
	runtime.LockOSThread()
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), n); err != nil {
		log.Printf("nice %d: %v", n, err)
	}
}
