package bench

// CPU accounting of the throughput measurements: where the machine's CPU
// goes while a measurement's records/s figure is taken. A cpuSampler reads
// the cumulative CPU time (user + system) of the bench process itself
// (/proc/self/stat), of the local broker JVM(s) (/proc/PID/stat of the
// kafka.Kafka processes listening on the brokers' ports) and of the whole
// machine (/proc/stat); cpuUse turns two snapshots into per-record and
// per-core figures.
//
// Linux only: elsewhere the files are missing, snapshots come back unknown
// and the report has no CPU figures. Everything here is plain file reading,
// so the package builds on every platform.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CPUUse is where the CPU went during one throughput measurement's window
// (the one its records/s figure is taken over). Broker fields are null when
// the broker's processes were not found on this machine (a remote broker,
// or another user's process): unknown, not zero.
type CPUUse struct {
	WindowSeconds float64 `json:"window_seconds"`
	Records       int64   `json:"records"` // input records committed in the window
	Cores         int     `json:"cores"`   // CPUs in /proc/stat
	// Bench is the bench process: the ceiling program in the ceiling runs,
	// the in-process orderflow instance(s) in the orderflow runs, plus the
	// harness's own small overhead in both.
	BenchUsPerRecord float64 `json:"bench_us_per_record"`
	BenchCores       float64 `json:"bench_cores"`
	// Broker is the local Kafka broker JVM(s) (BrokerPIDs).
	BrokerUsPerRecord *float64 `json:"broker_us_per_record"`
	BrokerCores       *float64 `json:"broker_cores"`
	BrokerPIDs        []int    `json:"broker_pids,omitempty"`
	// BrokerJIT and BrokerGC are the parts of Broker spent in the JVM's
	// JIT compiler threads (C1/C2 CompilerThread) and garbage collector
	// threads (GC Thread, G1 ...), from /proc/PID/task: a freshly started
	// broker spends a large share of its CPU compiling. Threads that
	// ended within the window are not seen, so these are lower bounds.
	BrokerJITUsPerRecord *float64 `json:"broker_jit_us_per_record,omitempty"`
	BrokerGCUsPerRecord  *float64 `json:"broker_gc_us_per_record,omitempty"`
	BrokerUnknown        string   `json:"broker_unknown,omitempty"` // why the broker fields are null
	// Machine is every CPU of the machine (/proc/stat): busy time per
	// record and busy cores; IRQCores is its irq + softirq time (loopback
	// networking, largely), OtherCores what is left when the bench
	// process, the broker and the irq time are taken out (other processes:
	// null when the broker is unknown).
	MachineUsPerRecord float64  `json:"machine_us_per_record"`
	MachineCores       float64  `json:"machine_cores"`
	IRQCores           float64  `json:"irq_cores"`
	OtherCores         *float64 `json:"other_cores"`
	// OtherTop are the biggest of the other processes (kernel threads
	// included, grouped by name: kworker/* as "kworker"), cores each;
	// processes that exited within the window are not seen.
	OtherTop     []NamedCores `json:"other_top,omitempty"`
	IdlePercent  float64      `json:"idle_percent"` // idle + iowait, of all the machine's CPU time
	StealPercent float64      `json:"steal_percent,omitempty"`
	// Rough: the window is under roughWindow, too short for figures read
	// in 10 ms clock ticks (tiny mode).
	Rough bool `json:"rough,omitempty"`
}

// roughWindow is the window below which CPU figures are marked rough.
const roughWindow = 2 * time.Second

// String is the report's line: "CPU per record: bench 2.7 µs, broker 1.9
// µs, ..."; "CPU unknown" for nil.
func (u *CPUUse) String() string {
	if u == nil {
		return "CPU unknown"
	}
	var b strings.Builder
	broker, brokerCores := "broker unknown", "broker unknown"
	if u.BrokerUsPerRecord != nil {
		broker = fmt.Sprintf("broker %s µs", us(*u.BrokerUsPerRecord))
		if u.BrokerJITUsPerRecord != nil && u.BrokerGCUsPerRecord != nil {
			broker += fmt.Sprintf(" (JIT %s, GC %s)", us(*u.BrokerJITUsPerRecord), us(*u.BrokerGCUsPerRecord))
		}
		brokerCores = fmt.Sprintf("broker %.2f", *u.BrokerCores)
	}
	fmt.Fprintf(&b, "CPU per record: bench %s µs, %s, machine %s µs, idle %.0f%%", us(u.BenchUsPerRecord), broker,
		us(u.MachineUsPerRecord), u.IdlePercent)
	fmt.Fprintf(&b, "; cores used: bench %.2f, %s, irq %.2f", u.BenchCores, brokerCores, u.IRQCores)
	if u.OtherCores != nil {
		fmt.Fprintf(&b, ", other %.2f", *u.OtherCores)
		if len(u.OtherTop) > 0 {
			top := make([]string, len(u.OtherTop))
			for i, o := range u.OtherTop {
				top[i] = fmt.Sprintf("%s %.2f", o.Name, o.Cores)
			}
			fmt.Fprintf(&b, " (%s)", strings.Join(top, ", "))
		}
	}
	fmt.Fprintf(&b, " of %d over %.1fs", u.Cores, u.WindowSeconds)
	if u.StealPercent >= 1 {
		fmt.Fprintf(&b, ", %.0f%% stolen by the hypervisor", u.StealPercent)
	}
	if u.BrokerUnknown != "" {
		fmt.Fprintf(&b, " (broker unknown: %s)", u.BrokerUnknown)
	}
	if u.Rough {
		fmt.Fprintf(&b, " (rough: a window under %v, counted in clock ticks)", roughWindow)
	}
	return b.String()
}

// NamedCores is a group of processes and the cores they used.
type NamedCores struct {
	Name  string  `json:"name"`
	Cores float64 `json:"cores"`
}

func us(v float64) string {
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// atClkTck is the auxiliary vector entry holding the clock tick rate
// (sysconf(_SC_CLK_TCK)); linux/auxvec.h.
const atClkTck = 17

// clockTicks is the rate of the clock ticks /proc counts CPU time in
// (USER_HZ). Go has no sysconf without cgo, so it is read from the
// process's auxiliary vector, /proc/self/auxv (native-endian word pairs,
// as the C library's sysconf reads it); 100, Linux's USER_HZ on every
// architecture, if that fails.
var clockTicks = sync.OnceValue(func() float64 {
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		if hz, ok := auxvValue(b, atClkTck); ok && hz > 0 {
			return float64(hz)
		}
	}
	return 100
})

// auxvValue finds the entry of type typ in an auxiliary vector of this
// process's word size.
func auxvValue(b []byte, typ uint64) (uint64, bool) {
	w := strconv.IntSize / 8
	word := func(p []byte) uint64 {
		if w == 8 {
			return binary.NativeEndian.Uint64(p)
		}
		return uint64(binary.NativeEndian.Uint32(p))
	}
	for i := 0; i+2*w <= len(b); i += 2 * w {
		t, v := word(b[i:]), word(b[i+w:])
		if t == 0 { // AT_NULL
			break
		}
		if t == typ {
			return v, true
		}
	}
	return 0, false
}

// procStat is what the sampler reads of /proc/PID/stat.
type procStat struct {
	comm         string
	utime, stime uint64 // clock ticks, all threads (living and dead)
	starttime    uint64 // clock ticks after boot: tells a reused pid apart
}

// parseProcStat parses /proc/PID/stat (proc(5)). The comm field, in
// parentheses, may itself hold spaces and parentheses, so the numbered
// fields are taken after the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	s := strings.TrimSpace(string(b))
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("proc stat: no (comm) in %.60q", s)
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state), so field n is f[n-3]: utime 14, stime 15,
	// starttime 22.
	if len(f) < 22-3+1 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after the comm, want at least %d", len(f), 22-3+1)
	}
	p := procStat{comm: s[open+1 : end]}
	var err error
	for _, x := range []struct {
		field int
		v     *uint64
	}{{14, &p.utime}, {15, &p.stime}, {22, &p.starttime}} {
		if *x.v, err = strconv.ParseUint(f[x.field-3], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("proc stat: field %d: %w", x.field, err)
		}
	}
	return p, nil
}

// machineStat is the machine's CPU time, in clock ticks summed over every
// CPU, from the "cpu" line of /proc/stat.
type machineStat struct {
	busy  uint64 // user + nice + system + irq + softirq
	irq   uint64 // irq + softirq (part of busy)
	idle  uint64 // idle + iowait
	steal uint64
	cpus  int // cpuN lines
}

func (m machineStat) total() uint64 { return m.busy + m.idle + m.steal }

// parseMachineStat parses /proc/stat (proc(5)): the "cpu" line's user,
// nice, system, idle, iowait, irq, softirq, steal, guest and guest_nice;
// guest time is already counted in user and nice, so it is left out.
func parseMachineStat(b []byte) (machineStat, error) {
	var m machineStat
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			if _, err := strconv.Atoi(f[0][3:]); err == nil {
				m.cpus++
			}
			continue
		}
		if len(f) < 5 {
			return m, fmt.Errorf("/proc/stat: short cpu line %q", line)
		}
		v := make([]uint64, 8) // fields missing on old kernels stay 0
		for i := range v {
			if i+1 >= len(f) {
				break
			}
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return m, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		m.irq = irq + softirq
		m.busy = user + nice + system + m.irq
		m.idle = idle + iowait
		m.steal = steal
		found = true
	}
	if !found {
		return m, errors.New("/proc/stat: no cpu line")
	}
	return m, nil
}

// brokerProc is one broker JVM.
type brokerProc struct {
	pid       int
	starttime uint64
}

// cpuSampler takes CPU snapshots. Its zero value samples the bench
// process and the machine only; findBroker adds the broker.
type cpuSampler struct {
	addrs []string // the brokers' host:port (seeds and metadata)

	mu      sync.Mutex
	brokers []brokerProc
	why     string // why brokers is empty
}

// cpuSnapshot is one reading; the ok fields say what could be read.
type cpuSnapshot struct {
	at       time.Time
	self     uint64 // ticks
	selfOK   bool
	broker   uint64 // ticks, summed over brokers
	jit, gc  uint64 // ticks of the brokers' JIT and GC threads
	threadOK bool   // jit and gc could be read
	brokers  []brokerProc
	brokerOK bool
	why      string
	machine  machineStat
	machOK   bool
	procs    map[int]procStat // every process but this one, kernel threads included
}

// snapshot reads the CPU times now. A nil sampler returns an unknown
// snapshot.
func (s *cpuSampler) snapshot() cpuSnapshot {
	var c cpuSnapshot
	if s == nil {
		return c
	}
	c.at = time.Now()
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		if p, err := parseProcStat(b); err == nil {
			c.self, c.selfOK = p.utime+p.stime, true
		}
	}
	s.mu.Lock()
	c.brokers, c.why = s.brokers, s.why
	s.mu.Unlock()
	c.brokerOK = len(c.brokers) > 0
	for _, bp := range c.brokers {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(bp.pid) + "/stat")
		var p procStat
		if err == nil {
			p, err = parseProcStat(b)
		}
		if err == nil && p.starttime != bp.starttime {
			err = errors.New("pid reused")
		}
		if err != nil {
			c.brokerOK, c.why = false, fmt.Sprintf("broker pid %d gone (%v)", bp.pid, err)
			break
		}
		c.broker += p.utime + p.stime
	}
	c.threadOK = c.brokerOK
	for _, bp := range c.brokers {
		if !c.threadOK {
			break
		}
		jit, gc, ok := jvmThreadTicks(bp.pid)
		c.jit, c.gc, c.threadOK = c.jit+jit, c.gc+gc, ok
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		c.machine, err = parseMachineStat(b)
		c.machOK = err == nil
	}
	c.procs = allProcs()
	return c
}

// heapFlags returns the -Xms and -Xmx flags of the broker JVMs' command
// lines ("" if none was found).
func (s *cpuSampler) heapFlags() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var flags []string
	for _, bp := range s.brokers {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(bp.pid) + "/cmdline")
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if (strings.HasPrefix(a, "-Xmx") || strings.HasPrefix(a, "-Xms")) && !slices.Contains(flags, a) {
				flags = append(flags, a)
			}
		}
	}
	return strings.Join(flags, " ")
}

// jvmThreadTicks sums the CPU time of a HotSpot JVM's JIT compiler
// threads ("C1 CompilerThread0", "C2 CompilerThre" as the kernel cuts
// names to 15 bytes) and garbage collector threads ("GC Thread#0", "G1
// Conc#0", "G1 Main Marker", "G1 Refine#0", "G1 Service", ...).
func jvmThreadTicks(pid int) (jit, gc uint64, ok bool) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/[0-9]*/stat")
	if err != nil || len(tasks) == 0 {
		return 0, 0, false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		p, err := parseProcStat(b)
		if err != nil {
			return 0, 0, false
		}
		switch jvmThreadKind(p.comm) {
		case "jit":
			jit += p.utime + p.stime
		case "gc":
			gc += p.utime + p.stime
		}
	}
	return jit, gc, true
}

// jvmThreadKind tells a HotSpot JIT ("jit") or GC ("gc") thread by name.
func jvmThreadKind(comm string) string {
	switch {
	case strings.HasPrefix(comm, "C1 CompilerThre"), strings.HasPrefix(comm, "C2 CompilerThre"):
		return "jit"
	case strings.HasPrefix(comm, "GC Thread"), strings.HasPrefix(comm, "G1 "):
		return "gc"
	}
	return ""
}

// allProcs reads /proc/PID/stat of every process but this one (nil
// without /proc).
func allProcs() map[int]procStat {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	if len(dirs) == 0 {
		return nil
	}
	self := os.Getpid()
	m := make(map[int]procStat, len(dirs))
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue // gone
		}
		if p, err := parseProcStat(b); err == nil {
			m[pid] = p
		}
	}
	return m
}

// topOthers are the groups of processes (by name; kworker/* as one) that
// used the most CPU ticks between a and b, at most n of them, leaving out
// the broker's and those under 0.01 cores.
func topOthers(a, b map[int]procStat, brokers []brokerProc, cores func(uint64) float64, n int) []NamedCores {
	if a == nil || b == nil {
		return nil
	}
	ticks := map[string]uint64{}
	for pid, pb := range b {
		if slices.ContainsFunc(brokers, func(bp brokerProc) bool { return bp.pid == pid }) {
			continue
		}
		used := pb.utime + pb.stime
		if pa, ok := a[pid]; ok && pa.starttime == pb.starttime {
			used -= pa.utime + pa.stime
		} // else started within the window: all its time is in it
		name := pb.comm
		if strings.HasPrefix(name, "kworker/") {
			name = "kworker"
		}
		ticks[name] += used
	}
	var out []NamedCores
	for name, t := range ticks {
		if c := cores(t); c >= 0.01 {
			out = append(out, NamedCores{name, c})
		}
	}
	slices.SortFunc(out, func(x, y NamedCores) int {
		if x.Cores != y.Cores {
			return cmp.Compare(y.Cores, x.Cores)
		}
		return strings.Compare(x.Name, y.Name)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// cpuUse is the CPU used between snapshots a and b, for records input
// records; nil if the bench process's or the machine's CPU time is
// unknown.
func cpuUse(a, b cpuSnapshot, records int64) *CPUUse {
	wall := b.at.Sub(a.at).Seconds()
	if !a.selfOK || !b.selfOK || !a.machOK || !b.machOK || records <= 0 || wall <= 0 || b.machine.total() <= a.machine.total() {
		return nil
	}
	hz := clockTicks()
	perRecord := func(ticks uint64) float64 { return float64(ticks) / hz * 1e6 / float64(records) }
	cores := func(ticks uint64) float64 { return float64(ticks) / hz / wall }
	self := b.self - a.self
	busy, irq := b.machine.busy-a.machine.busy, b.machine.irq-a.machine.irq
	total := float64(b.machine.total() - a.machine.total())
	u := &CPUUse{
		WindowSeconds:      wall,
		Records:            records,
		Cores:              b.machine.cpus,
		BenchUsPerRecord:   perRecord(self),
		BenchCores:         cores(self),
		MachineUsPerRecord: perRecord(busy),
		MachineCores:       cores(busy),
		IRQCores:           cores(irq),
		IdlePercent:        100 * float64(b.machine.idle-a.machine.idle) / total,
		StealPercent:       100 * float64(b.machine.steal-a.machine.steal) / total,
		Rough:              b.at.Sub(a.at) < roughWindow,
	}
	switch {
	case !a.brokerOK:
		u.BrokerUnknown = a.why
	case !b.brokerOK:
		u.BrokerUnknown = b.why
	case !slices.Equal(a.brokers, b.brokers):
		u.BrokerUnknown = "the broker processes changed during the window"
	default:
		broker := b.broker - a.broker
		pr, c := perRecord(broker), cores(broker)
		other := u.MachineCores - u.BenchCores - c - u.IRQCores
		u.BrokerUsPerRecord, u.BrokerCores, u.OtherCores = &pr, &c, &other
		if a.threadOK && b.threadOK && b.jit >= a.jit && b.gc >= a.gc {
			jit, gc := perRecord(b.jit-a.jit), perRecord(b.gc-a.gc)
			u.BrokerJITUsPerRecord, u.BrokerGCUsPerRecord = &jit, &gc
		}
		u.OtherTop = topOthers(a.procs, b.procs, b.brokers, cores, 3)
		for _, bp := range b.brokers {
			u.BrokerPIDs = append(u.BrokerPIDs, bp.pid)
		}
	}
	return u
}

// newCPUSampler returns a sampler of the bench process, the machine and
// the broker JVMs serving addrs (host:port), which it looks for at once.
func newCPUSampler(ctx context.Context, addrs []string) *cpuSampler {
	s := &cpuSampler{addrs: addrs}
	s.findBroker(ctx)
	return s
}

// findBroker (re)finds the broker JVMs and reports whether they changed.
func (s *cpuSampler) findBroker(ctx context.Context) (changed bool) {
	if s == nil {
		return false
	}
	pids, why := findBrokerPIDs(ctx, s.addrs)
	var procs []brokerProc
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		var p procStat
		if err == nil {
			p, err = parseProcStat(b)
		}
		if err != nil {
			procs, why = nil, fmt.Sprintf("reading broker pid %d: %v", pid, err)
			break
		}
		procs = append(procs, brokerProc{pid, p.starttime})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = !slices.Equal(procs, s.brokers) || why != s.why
	s.brokers, s.why = procs, why
	return changed
}

// describe says what the sampler samples, for the log.
func (s *cpuSampler) describe() string {
	if s == nil {
		return "no CPU sampler"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.brokers) == 0 {
		return "broker CPU unknown: " + s.why
	}
	pids := make([]string, len(s.brokers))
	for i, b := range s.brokers {
		pids[i] = strconv.Itoa(b.pid)
	}
	return fmt.Sprintf("broker CPU from kafka.Kafka pid(s) %s; clock %g ticks/s", strings.Join(pids, ","), clockTicks())
}

// findBrokerPIDs returns the pids of the broker JVMs on this machine that
// serve addrs: the processes whose command line runs the main class
// kafka.Kafka (deploy/kafka/start.sh execs `java ... kafka.Kafka
// server.properties`) and that hold a socket listening on one of addrs. If
// there are none, why says why.
func findBrokerPIDs(ctx context.Context, addrs []string) (pids []int, why string) {
	jvms, err := kafkaJVMs()
	if err != nil {
		return nil, fmt.Sprintf("cannot scan /proc (%v)", err)
	}
	if len(jvms) == 0 {
		return nil, "no kafka.Kafka process on this machine (a remote broker?)"
	}
	targets := localTargets(ctx, addrs)
	if len(targets) == 0 {
		return nil, fmt.Sprintf("the brokers %s are not on this machine", strings.Join(addrs, ","))
	}
	listening, err := listeningSockets()
	if err != nil {
		return nil, fmt.Sprintf("cannot read the listening sockets (%v)", err)
	}
	inodes := map[string]bool{}
	for _, l := range listening {
		for _, t := range targets {
			if l.port == t.port && (l.ip.IsUnspecified() || l.ip.Equal(t.ip)) {
				inodes[l.inode] = true
			}
		}
	}
	var unreadable []string
	for _, pid := range jvms {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			unreadable = append(unreadable, strconv.Itoa(pid))
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if inode, ok := strings.CutPrefix(l, "socket:["); err == nil && ok && inodes[strings.TrimSuffix(inode, "]")] {
				pids = append(pids, pid)
				break
			}
		}
	}
	if len(pids) > 0 {
		return pids, ""
	}
	why = fmt.Sprintf("none of the kafka.Kafka processes (pids %s) listens on %s", joinInts(jvms), strings.Join(addrs, ","))
	if len(unreadable) > 0 {
		why += fmt.Sprintf("; cannot read the sockets of pid(s) %s (another user's?)", strings.Join(unreadable, ","))
	}
	return nil, why
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// kafkaJVMs returns the pids whose command line has the argument
// kafka.Kafka.
func kafkaJVMs() ([]int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, errors.New("no /proc")
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue // gone, or not ours to read
		}
		if slices.ContainsFunc(bytes.Split(b, []byte{0}), func(arg []byte) bool { return string(arg) == "kafka.Kafka" }) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// sockAddr is an IP and port; inode identifies a socket in /proc/PID/fd.
type sockAddr struct {
	ip    net.IP
	port  int
	inode string
}

// localTargets resolves addrs (host:port) and keeps the addresses of this
// machine (loopback, or an interface's).
func localTargets(ctx context.Context, addrs []string) []sockAddr {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var local []net.IP
	if ifs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifs {
			if n, ok := a.(*net.IPNet); ok {
				local = append(local, n.IP)
			}
		}
	}
	isLocal := func(ip net.IP) bool {
		return ip.IsLoopback() || slices.ContainsFunc(local, ip.Equal)
	}
	var out []sockAddr
	for _, a := range addrs {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		var ips []net.IP
		if ip := net.ParseIP(host); ip != nil {
			ips = []net.IP{ip}
		} else if ias, err := net.DefaultResolver.LookupIPAddr(ctx, host); err == nil {
			for _, ia := range ias {
				ips = append(ips, ia.IP)
			}
		}
		for _, ip := range ips {
			if isLocal(ip) {
				out = append(out, sockAddr{ip: ip, port: port})
			}
		}
	}
	return out
}

// listeningSockets reads the listening TCP sockets of /proc/net/tcp and
// tcp6.
func listeningSockets() ([]sockAddr, error) {
	var out []sockAddr
	var errs []error
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s, err := parseNetTCP(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, s...)
	}
	if len(errs) == 2 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// parseNetTCP parses /proc/net/tcp or tcp6 (proc(5)) and returns the
// sockets in state LISTEN (0A). An address is hex 32-bit words, each as
// the kernel holds it (native order); the port is hex in host order.
func parseNetTCP(b []byte) ([]sockAddr, error) {
	var out []sockAddr
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 10 {
			continue // header, blank line
		}
		if f[3] != "0A" {
			continue
		}
		h, p, ok := strings.Cut(f[1], ":")
		raw, err := hex.DecodeString(h)
		if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
			return nil, fmt.Errorf("bad local address %q", f[1])
		}
		ip := make(net.IP, len(raw))
		for w := 0; w < len(raw); w += 4 {
			binary.NativeEndian.PutUint32(ip[w:], binary.BigEndian.Uint32(raw[w:]))
		}
		port, err := strconv.ParseUint(p, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("bad port in %q", f[1])
		}
		out = append(out, sockAddr{ip: ip, port: int(port), inode: f[9]})
	}
	return out, nil
}
