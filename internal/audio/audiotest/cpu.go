package audiotest

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU the process has used so far, user and system, over all its threads
// (the encoding threads too), for benchmarks that report CPU per second of audio.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
