// Package machine accounts for where a benchmark machine's CPU and memory
// go, from Linux's /proc (read with github.com/prometheus/procfs): the CPU
// time of this process, of the local Kafka broker JVMs (with their JIT
// compiler and garbage collector threads) and of the whole machine between
// two snapshots, the peak RSS of a child process, and the machine's
// description. Elsewhere the files are missing: snapshots come back
// unknown and the figures with them, so the package builds everywhere.
package machine

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/procfs"
)

// userHZ is the unit of /proc's CPU times, Linux's USER_HZ: 100 on every
// architecture, as procfs assumes too.
const userHZ = 100

// procFS opens the /proc the package reads; tests point it elsewhere.
var procFS = func() (procfs.FS, error) { return procfs.NewFS(procfs.DefaultMountPoint) }

// procTimes is what a snapshot keeps of one process.
type procTimes struct {
	comm  string
	secs  float64 // user + system, every thread, living and dead
	start uint64  // clock ticks after boot: tells a reused pid apart
}

func timesOf(p procfs.Proc) (procTimes, error) {
	s, err := p.Stat()
	if err != nil {
		return procTimes{}, err
	}
	return procTimes{comm: s.Comm, secs: s.CPUTime(), start: s.Starttime}, nil
}

// allProcs reads the CPU times of every process but self (nil without
// /proc).
func allProcs(fs procfs.FS, self int) map[int]procTimes {
	procs, err := fs.AllProcs()
	if err != nil {
		return nil
	}
	m := make(map[int]procTimes, len(procs))
	for _, p := range procs {
		if p.PID == self {
			continue
		}
		if t, err := timesOf(p); err == nil { // else gone
			m[p.PID] = t
		}
	}
	return m
}

// topOthers are the groups of processes (by name; kworker/* as one) that
// used the most CPU between a and b, at most n of them, leaving out the
// broker's and those under 0.01 cores.
func topOthers(a, b map[int]procTimes, brokers []brokerProc, cores func(secs float64) float64, n int) []NamedCores {
	if a == nil || b == nil {
		return nil
	}
	secs := map[string]float64{}
	for pid, pb := range b {
		if slices.ContainsFunc(brokers, func(bp brokerProc) bool { return bp.pid == pid }) {
			continue
		}
		used := pb.secs
		if pa, ok := a[pid]; ok && pa.start == pb.start {
			used -= pa.secs
		} // else started within the window: all its time is in it
		name := pb.comm
		if strings.HasPrefix(name, "kworker/") {
			name = "kworker"
		}
		secs[name] += used
	}
	var out []NamedCores
	for name, s := range secs {
		if c := cores(s); c >= 0.01 {
			out = append(out, NamedCores{name, c})
		}
	}
	slices.SortFunc(out, func(x, y NamedCores) int {
		if x.Cores != y.Cores {
			return cmp.Compare(y.Cores, x.Cores)
		}
		return strings.Compare(x.Name, y.Name)
	})
	return out[:min(n, len(out))]
}

// PeakRSS is the peak resident set size (VmHWM) of process pid, in bytes.
func PeakRSS(pid int) (int64, error) {
	fs, err := procFS()
	if err != nil {
		return 0, err
	}
	p, err := fs.Proc(pid)
	if err != nil {
		return 0, err
	}
	s, err := p.NewStatus()
	if err != nil {
		return 0, err
	}
	return int64(s.VmHWM), nil
}

// Info describes the machine: the CPU model and the memory in GiB (one
// decimal); empty and 0 where unknown.
func Info() (cpu string, memoryGiB float64) {
	fs, err := procFS()
	if err != nil {
		return "", 0
	}
	if ci, err := fs.CPUInfo(); err == nil && len(ci) > 0 {
		cpu = ci[0].ModelName
	}
	if m, err := fs.Meminfo(); err == nil && m.MemTotalBytes != nil {
		memoryGiB = math.Round(float64(*m.MemTotalBytes)/(1<<30)*10) / 10
	}
	return cpu, memoryGiB
}

// FreeShare is the share of the machine's memory that is free (MemFree of
// MemTotal); nil where unknown.
func FreeShare() *float64 {
	fs, err := procFS()
	if err != nil {
		return nil
	}
	m, err := fs.Meminfo()
	if err != nil || m.MemTotalBytes == nil || m.MemFreeBytes == nil || *m.MemTotalBytes == 0 {
		return nil
	}
	s := float64(*m.MemFreeBytes) / float64(*m.MemTotalBytes)
	return &s
}

// LoadAvg is the 1, 5 and 15 minute load average (zeros where unknown).
func LoadAvg() [3]float64 {
	fs, err := procFS()
	if err != nil {
		return [3]float64{}
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return [3]float64{}
	}
	return [3]float64{l.Load1, l.Load5, l.Load15}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
