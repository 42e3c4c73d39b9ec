//go:build unix

package avro

import (
	"syscall"
	"testing"
	"time"
)

// cpuClock returns the process's user+system CPU time.
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports "cpu-ns/op", the process's CPU time per iteration
// (garbage collection included). On a shared, loaded machine wall-clock
// ns/op counts the time the benchmark was descheduled; this does not.
type cpuMeter struct{ start time.Duration }

func startCPU(b *testing.B) *cpuMeter { return &cpuMeter{start: cpuClock()} }

func (m *cpuMeter) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuClock()-m.start)/float64(b.N), "cpu-ns/op")
	}
}
