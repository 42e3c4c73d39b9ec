package machine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// CPUUse is where the CPU went during one measurement's window. Broker
// fields are null when the broker's processes were not found on this
// machine (a remote broker, or another user's process): unknown, not zero.
type CPUUse struct {
	WindowSeconds float64 `json:"window_seconds"`
	Records       int64   `json:"records"` // input records committed in the window
	Cores         int     `json:"cores"`   // CPUs in /proc/stat
	// Bench is this process: the ceiling program in the ceiling runs, the
	// in-process orderflow instance(s) in the orderflow runs, plus the
	// harness's own small overhead in both.
	BenchUsPerRecord float64 `json:"bench_us_per_record"`
	BenchCores       float64 `json:"bench_cores"`
	// Broker is the local Kafka broker JVM(s) (BrokerPIDs).
	BrokerUsPerRecord *float64 `json:"broker_us_per_record"`
	BrokerCores       *float64 `json:"broker_cores"`
	BrokerPIDs        []int    `json:"broker_pids,omitempty"`
	// BrokerJIT and BrokerGC are the parts of Broker spent in the JVM's
	// JIT compiler threads (C1/C2 CompilerThread) and garbage collector
	// threads (GC Thread, G1 ...): a freshly started broker spends a
	// large share of its CPU compiling. Threads that ended within the
	// window are not seen, so these are lower bounds.
	BrokerJITUsPerRecord *float64 `json:"broker_jit_us_per_record,omitempty"`
	BrokerGCUsPerRecord  *float64 `json:"broker_gc_us_per_record,omitempty"`
	BrokerUnknown        string   `json:"broker_unknown,omitempty"` // why the broker fields are null
	// Machine is every CPU of the machine (/proc/stat): busy time per
	// record and busy cores; IRQCores is its irq + softirq time (loopback
	// networking, largely), OtherCores what is left when this process,
	// the broker and the irq time are taken out (other processes: null
	// when the broker is unknown).
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
	// Rough: the window is under RoughWindow, too short for figures read
	// in 10 ms clock ticks (tiny mode).
	Rough bool `json:"rough,omitempty"`
}

// RoughWindow is the window below which CPU figures are marked rough.
const RoughWindow = 2 * time.Second

// NamedCores is a group of processes and the cores they used.
type NamedCores struct {
	Name  string  `json:"name"`
	Cores float64 `json:"cores"`
}

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
		fmt.Fprintf(&b, " (rough: a window under %v, counted in clock ticks)", RoughWindow)
	}
	return b.String()
}

func us(v float64) string {
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// Sampler takes CPU snapshots of this process, the machine and the broker
// JVMs serving a list of addresses. A nil Sampler takes unknown snapshots.
type Sampler struct {
	fs    procfs.FS
	fsOK  bool
	addrs []string // the brokers' host:port

	mu      sync.Mutex
	brokers []brokerProc
	why     string // why brokers is empty
}

// NewSampler returns a sampler of this process, the machine and the broker
// JVMs serving addrs (host:port), which it looks for at once.
func NewSampler(ctx context.Context, addrs []string) *Sampler {
	s := &Sampler{addrs: addrs}
	var err error
	s.fs, err = procFS()
	s.fsOK = err == nil
	s.FindBroker(ctx)
	return s
}

// FindBroker finds the broker JVMs again (a broker may have restarted) and
// reports whether they changed.
func (s *Sampler) FindBroker(ctx context.Context) (changed bool) {
	if s == nil {
		return false
	}
	brokers, why := []brokerProc(nil), "cannot open /proc"
	if s.fsOK {
		brokers, why = findBrokers(ctx, s.fs, s.addrs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = !slices.Equal(brokers, s.brokers) || why != s.why
	s.brokers, s.why = brokers, why
	return changed
}

// String says what the sampler samples, for the log.
func (s *Sampler) String() string {
	if s == nil {
		return "no CPU sampler"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.brokers) == 0 {
		return "broker CPU unknown: " + s.why
	}
	pids := make([]int, len(s.brokers))
	for i, b := range s.brokers {
		pids[i] = b.pid
	}
	return "broker CPU from kafka.Kafka pid(s) " + joinInts(pids)
}

// HeapFlags returns the -Xms and -Xmx flags of the broker JVMs' command
// lines ("" if none was found).
func (s *Sampler) HeapFlags() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return heapFlags(s.fs, s.brokers)
}

// Snapshot is one reading of the CPU times; the ok fields say what could
// be read.
type Snapshot struct {
	at       time.Time
	self     float64 // seconds, as every CPU time here
	selfOK   bool
	broker   float64 // summed over brokers
	jit, gc  float64 // the brokers' JIT and GC threads
	threadOK bool    // jit and gc could be read
	brokers  []brokerProc
	brokerOK bool
	why      string
	machine  procfs.CPUStat
	cpus     int
	machOK   bool
	procs    map[int]procTimes // every process but this one, kernel threads included
}

// Snapshot reads the CPU times now.
func (s *Sampler) Snapshot() Snapshot {
	var c Snapshot
	if s == nil || !s.fsOK {
		return c
	}
	c.at = time.Now()
	self, err := s.fs.Self()
	if err == nil {
		if t, err := timesOf(self); err == nil {
			c.self, c.selfOK = t.secs, true
		}
	}
	s.mu.Lock()
	c.brokers, c.why = s.brokers, s.why
	s.mu.Unlock()
	c.brokerOK = len(c.brokers) > 0
	c.threadOK = c.brokerOK
	for _, bp := range c.brokers {
		t, err := s.procTimes(bp.pid)
		if err == nil && t.start != bp.start {
			err = fmt.Errorf("pid reused")
		}
		if err != nil {
			c.brokerOK, c.threadOK, c.why = false, false, fmt.Sprintf("broker pid %d gone (%v)", bp.pid, err)
			break
		}
		c.broker += t.secs
		jit, gc, ok := jvmThreadSecs(s.fs, bp.pid)
		c.jit, c.gc, c.threadOK = c.jit+jit, c.gc+gc, c.threadOK && ok
	}
	if st, err := s.fs.Stat(); err == nil {
		c.machine, c.cpus, c.machOK = st.CPUTotal, len(st.CPU), true
	}
	c.procs = allProcs(s.fs, self.PID)
	return c
}

func (s *Sampler) procTimes(pid int) (procTimes, error) {
	p, err := s.fs.Proc(pid)
	if err != nil {
		return procTimes{}, err
	}
	return timesOf(p)
}

// busy is user + nice + system + irq + softirq (guest time is counted in
// user and nice already), irq its irq + softirq, idle idle + iowait.
func busy(c procfs.CPUStat) (busy, irq, idle, total float64) {
	irq = c.IRQ + c.SoftIRQ
	busy = c.User + c.Nice + c.System + irq
	idle = c.Idle + c.Iowait
	return busy, irq, idle, busy + idle + c.Steal
}

// Use is the CPU used between snapshots a and b, over records input
// records; nil if this process's or the machine's CPU time is unknown.
func Use(a, b Snapshot, records int64) *CPUUse {
	wall := b.at.Sub(a.at).Seconds()
	busyA, irqA, idleA, totalA := busy(a.machine)
	busyB, irqB, idleB, totalB := busy(b.machine)
	if !a.selfOK || !b.selfOK || !a.machOK || !b.machOK || records <= 0 || wall <= 0 || totalB <= totalA {
		return nil
	}
	perRecord := func(secs float64) float64 { return secs * 1e6 / float64(records) }
	cores := func(secs float64) float64 { return secs / wall }
	total := totalB - totalA
	u := &CPUUse{
		WindowSeconds:      wall,
		Records:            records,
		Cores:              b.cpus,
		BenchUsPerRecord:   perRecord(b.self - a.self),
		BenchCores:         cores(b.self - a.self),
		MachineUsPerRecord: perRecord(busyB - busyA),
		MachineCores:       cores(busyB - busyA),
		IRQCores:           cores(irqB - irqA),
		IdlePercent:        100 * (idleB - idleA) / total,
		StealPercent:       100 * (b.machine.Steal - a.machine.Steal) / total,
		Rough:              b.at.Sub(a.at) < RoughWindow,
	}
	switch {
	case !a.brokerOK:
		u.BrokerUnknown = a.why
	case !b.brokerOK:
		u.BrokerUnknown = b.why
	case !slices.Equal(a.brokers, b.brokers):
		u.BrokerUnknown = "the broker processes changed during the window"
	default:
		pr, c := perRecord(b.broker-a.broker), cores(b.broker-a.broker)
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

// JITShare is the broker's JIT threads' share of its CPU between two
// snapshots; nil if unknown.
func JITShare(a, b Snapshot) *float64 {
	if !a.brokerOK || !b.brokerOK || !a.threadOK || !b.threadOK || !slices.Equal(a.brokers, b.brokers) ||
		b.broker <= a.broker || b.jit < a.jit {
		return nil
	}
	s := (b.jit - a.jit) / (b.broker - a.broker)
	return &s
}
