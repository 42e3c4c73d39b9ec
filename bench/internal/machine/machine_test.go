package machine

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// fakeProc is a /proc tree in a temporary directory, which procFS opens
// for the test.
type fakeProc struct {
	t   *testing.T
	dir string
}

func newFakeProc(t *testing.T) *fakeProc {
	f := &fakeProc{t, t.TempDir()}
	old := procFS
	procFS = func() (procfs.FS, error) { return procfs.NewFS(f.dir) }
	t.Cleanup(func() { procFS = old })
	return f
}

func (f *fakeProc) write(path, text string) {
	f.t.Helper()
	p := filepath.Join(f.dir, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) link(path, target string) {
	f.t.Helper()
	p := filepath.Join(f.dir, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

// stat writes path's stat file (proc(5)) with these CPU ticks (utime,
// stime) and start time.
func (f *fakeProc) stat(path string, pid int, comm string, utime, stime, start uint64) {
	f.write(path+"/stat", fmt.Sprintf("%d (%s) S 1 1 1 0 -1 4194304 1 0 0 0 %d %d 0 0 20 0 1 0 %d 1000 100 "+
		"18446744073709551615 1 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 1 1 1 1 1 1 1 0\n", pid, comm, utime, stime, start))
}

// machineStat writes /proc/stat: ticks of user, system, idle, irq and
// softirq summed over two CPUs.
func (f *fakeProc) machineStat(user, system, idle, irq, softirq uint64) {
	f.write("stat", fmt.Sprintf("cpu  %d 0 %d %d 0 %d %d 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 1 2\nbtime 1\n",
		user, system, idle, irq, softirq))
}

// TestSamplerFake finds the broker on a fake /proc (a kafka.Kafka process
// holding the socket listening on the broker's port) and accounts a
// window's CPU to this process, the broker, its JIT and GC threads, irq
// and the other processes.
func TestSamplerFake(t *testing.T) {
	f := newFakeProc(t)
	f.link("self", "100")
	f.write("100/cmdline", "orderflow-bench\x00")
	f.write("200/cmdline", "java\x00-Xms1g\x00-server\x00-Xmx1g\x00kafka.Kafka\x00server.properties\x00")
	f.link("200/fd/3", "/tmp/x.log")
	f.link("200/fd/7", "socket:[4242]")
	f.write("200/status", "Name:\tjava\nVmHWM:\t  2048 kB\n")
	f.write("300/cmdline", "sh\x00")
	f.write("400/cmdline", "java\x00kafka.Kafka\x00") // another broker, not listening on the port
	f.stat("400", 400, "java", 0, 0, 1)
	f.link("400/fd/1", "/dev/null")
	// 127.0.0.1:40188 listening (0A) with inode 4242; the kernel prints
	// the address as the little-endian word it holds.
	f.write("net/tcp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
		"   0: 0100007F:9CFC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n"+
		"   1: 0100007F:9CFD 0100007F:9CFC 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 100 0 0 10 0\n")
	snap := func(self, broker, jit, gc, other, busy, irq, idle uint64) {
		f.stat("100", 100, "orderflow-bench", self, 0, 5)
		f.stat("200", 200, "java", broker, 0, 7)
		f.stat("200/task/201", 201, "C2 CompilerThre", jit, 0, 7)
		f.stat("200/task/202", 202, "GC Thread#0", gc, 0, 7)
		f.stat("200/task/203", 203, "data-plane-kafk", broker-jit-gc, 0, 7)
		f.stat("300", 300, "a) (b", other, 0, 9) // a comm with parentheses
		f.machineStat(busy-irq, 0, idle, irq, 0)
	}
	// 10 s on 2 cores, 2000 ticks: bench 8 s, broker 6 s (JIT 2, GC 0.5),
	// irq 1 s, other 1 s, idle 4 s.
	snap(1000, 5000, 300, 40, 100, 10000, 100, 50000)
	s := NewSampler(context.Background(), []string{"127.0.0.1:40188"})
	if got := s.String(); got != "broker CPU from kafka.Kafka pid(s) 200" {
		t.Fatalf("sampler: %s", got)
	}
	if got := s.HeapFlags(); got != "-Xms1g -Xmx1g" {
		t.Errorf("heap flags %q", got)
	}
	a := s.Snapshot()
	snap(1800, 5600, 500, 90, 200, 11600, 200, 50400)
	b := s.Snapshot()
	b.at = a.at.Add(10 * time.Second)
	u := Use(a, b, 1_000_000)
	if u == nil || u.BrokerUsPerRecord == nil || u.OtherCores == nil || u.BrokerJITUsPerRecord == nil {
		t.Fatalf("got %+v", u)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("bench µs/record", u.BenchUsPerRecord, 8)
	near("broker µs/record", *u.BrokerUsPerRecord, 6)
	near("broker JIT µs/record", *u.BrokerJITUsPerRecord, 2)
	near("broker GC µs/record", *u.BrokerGCUsPerRecord, 0.5)
	near("machine µs/record", u.MachineUsPerRecord, 16)
	near("bench cores", u.BenchCores, 0.8)
	near("broker cores", *u.BrokerCores, 0.6)
	near("irq cores", u.IRQCores, 0.1)
	near("other cores", *u.OtherCores, 0.1)
	near("idle %", u.IdlePercent, 20)
	if u.Cores != 2 || u.Records != 1_000_000 || !slices.Equal(u.BrokerPIDs, []int{200}) || u.Rough {
		t.Errorf("got %+v", u)
	}
	if len(u.OtherTop) != 1 || u.OtherTop[0].Name != "a) (b" {
		t.Errorf("other top %v", u.OtherTop)
	}
	near("JIT share", *JITShare(a, b), 200.0/600)
	line := u.String()
	for _, want := range []string{"CPU per record: bench 8.00 µs, broker 6.00 µs (JIT 2.00, GC 0.50), machine", "idle 20%", "bench 0.80", "(a) (b 0.10)", "of 2 over 10.0s"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	if rss, err := PeakRSS(200); err != nil || rss != 2048<<10 {
		t.Errorf("PeakRSS = %d, %v", rss, err)
	}

	// A restarted broker in the window: unknown.
	f.stat("200", 200, "java", 5600, 0, 8)
	if c := s.Snapshot(); c.brokerOK || !strings.Contains(c.why, "pid reused") {
		t.Errorf("restarted broker: %+v", c)
	}
	// No broker listening on the port.
	if s := NewSampler(context.Background(), []string{"127.0.0.1:1"}); !strings.Contains(s.String(), "none of the kafka.Kafka processes (pids 200,400) listens on 127.0.0.1:1") {
		t.Errorf("sampler: %s", s)
	}
}

// TestUseUnknown checks that what cannot be read stays unknown (null),
// not zero.
func TestUseUnknown(t *testing.T) {
	at := time.Unix(1000, 0)
	brokers := []brokerProc{{pid: 7, start: 1}}
	a := Snapshot{at: at, self: 10, selfOK: true, broker: 50, brokers: brokers, brokerOK: true,
		jit: 3, gc: 0.4, threadOK: true, machine: procfs.CPUStat{User: 100, Idle: 500}, cpus: 2, machOK: true}
	b := a
	b.at, b.self, b.broker, b.jit, b.gc = at.Add(time.Second), 10.5, 50.5, 3.1, 0.5
	b.machine.User, b.machine.Idle = 101, 501
	if u := Use(a, b, 1000); u == nil || u.BrokerJITUsPerRecord == nil || !u.Rough {
		t.Fatalf("known: %+v", u)
	}
	// Threads unreadable at one end: no split, the broker total stays.
	a1 := a
	a1.threadOK = false
	if u := Use(a1, b, 1000); u == nil || u.BrokerUsPerRecord == nil || u.BrokerJITUsPerRecord != nil {
		t.Errorf("threads unknown: %+v", u)
	} else if strings.Contains(u.String(), "JIT") {
		t.Errorf("%q gives a JIT figure it does not have", u.String())
	}
	// Broker unknown: null, not zero.
	a2, b2 := a, b
	a2.brokerOK, a2.brokers, a2.why = false, nil, "no kafka.Kafka process"
	b2.brokerOK, b2.brokers, b2.why = false, nil, "no kafka.Kafka process"
	u := Use(a2, b2, 1000)
	if u == nil || u.BrokerUsPerRecord != nil || u.BrokerCores != nil || u.OtherCores != nil || u.BrokerUnknown == "" {
		t.Fatalf("unknown broker: %+v", u)
	}
	if line := u.String(); !strings.Contains(line, "broker unknown") {
		t.Errorf("%q does not say the broker is unknown", line)
	}
	if JITShare(a2, b2) != nil {
		t.Error("a JIT share of an unknown broker")
	}
	// A restarted broker in the window: unknown too.
	b3 := b
	b3.brokers = []brokerProc{{pid: 8, start: 2}}
	if u := Use(a, b3, 1); u == nil || u.BrokerUsPerRecord != nil {
		t.Errorf("restarted broker: %+v", u)
	}
	// Nothing known: nil.
	if u := Use(Snapshot{}, Snapshot{}, 10); u != nil {
		t.Errorf("unknown snapshots: %+v", u)
	}
	if got := (*CPUUse)(nil).String(); got != "CPU unknown" {
		t.Errorf("nil CPUUse: %q", got)
	}
	var nilSampler *Sampler
	if s := nilSampler.Snapshot(); s.selfOK {
		t.Errorf("nil sampler: %+v", s)
	}
}

func TestJVMThreadKind(t *testing.T) {
	for comm, want := range map[string]string{
		"C2 CompilerThre": "jit", "C1 CompilerThre": "jit", "GC Thread#0": "gc", "G1 Conc#0": "gc",
		"G1 Main Marker": "gc", "G1 Refine#0": "gc", "G1 Service": "gc",
		"data-plane-kafk": "", "java": "", "VM Thread": "", "kafka-1-metadat": "",
	} {
		if got := jvmThreadKind(comm); got != want {
			t.Errorf("jvmThreadKind(%q) = %q, want %q", comm, got, want)
		}
	}
}

func TestTopOthers(t *testing.T) {
	a := map[int]procTimes{
		1:  {comm: "java", secs: 1.1, start: 5},
		2:  {comm: "kworker/u8:1-flush-254:0", secs: 0.5, start: 2},
		3:  {comm: "kworker/1:1H-kblockd", secs: 0.5, start: 2},
		4:  {comm: "go", secs: 0.1, start: 7},
		5:  {comm: "old", secs: 5, start: 1}, // pid 5 reused below
		6:  {comm: "idle", secs: 0.07, start: 1},
		9:  {comm: "gone", secs: 0.01, start: 1},
		10: {comm: "compile", secs: 0.01, start: 9},
	}
	b := map[int]procTimes{
		1:  {comm: "java", secs: 10.1, start: 5}, // the broker: left out
		2:  {comm: "kworker/u8:1-writeback", secs: 0.8, start: 2},
		3:  {comm: "kworker/1:1H-kblockd", secs: 0.7, start: 2},
		4:  {comm: "go", secs: 0.3, start: 7},
		5:  {comm: "new", secs: 0.4, start: 99},
		6:  {comm: "idle", secs: 0.07, start: 1},
		10: {comm: "compile", secs: 0.21, start: 9},
		11: {comm: "compile", secs: 0.2, start: 98},
	}
	cores := func(secs float64) float64 { return secs } // over 1 s
	got := topOthers(a, b, []brokerProc{{pid: 1, start: 5}}, cores, 3)
	want := []NamedCores{{"kworker", 0.5}, {"compile", 0.4}, {"new", 0.4}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || math.Abs(got[i].Cores-want[i].Cores) > 1e-9 {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	if got := topOthers(nil, b, nil, cores, 3); got != nil {
		t.Errorf("no first snapshot: %v", got)
	}
}

func TestInfoFake(t *testing.T) {
	f := newFakeProc(t)
	f.write("cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n")
	f.write("meminfo", "MemTotal:       24684096 kB\nMemFree:         1139100 kB\nHugePages_Total:       0\n")
	f.write("loadavg", "0.67 1.97 1.82 1/200 12345\n")
	if cpu, mem := Info(); cpu != "AMD EPYC" || mem != 23.5 {
		t.Errorf("Info() = %q, %v", cpu, mem)
	}
	if s := FreeShare(); s == nil || math.Abs(*s-1139100.0/24684096) > 1e-12 {
		t.Errorf("FreeShare() = %v", s)
	}
	if l := LoadAvg(); l != [3]float64{0.67, 1.97, 1.82} {
		t.Errorf("LoadAvg() = %v", l)
	}
}

// TestSamplerLive reads this machine's /proc (Linux only): this process's
// CPU time grows as it burns CPU, a spinning child shows among the other
// processes, and the broker lookup gives a reason when it finds none.
func TestSamplerLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	s := NewSampler(context.Background(), []string{"127.0.0.1:1"})
	a := s.Snapshot()
	if !a.selfOK || !a.machOK || a.brokerOK || a.why == "" {
		t.Fatalf("snapshot: self %v machine %v broker %v (%s)", a.selfOK, a.machOK, a.brokerOK, a.why)
	}
	if _, ok := a.procs[os.Getpid()]; ok {
		t.Error("the other processes hold this one")
	}
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
	}
	b := s.Snapshot()
	u := Use(a, b, 1000)
	if u == nil || u.BenchCores < 0.02 || u.Cores < 1 || !u.Rough || u.BrokerUsPerRecord != nil {
		t.Fatalf("after 500 ms of spinning: %+v", u)
	}
	top := topOthers(a.procs, b.procs, nil, func(secs float64) float64 { return secs / 0.5 }, 1000) // other tests may share the machine
	if !slices.ContainsFunc(top, func(n NamedCores) bool { return n.Name == "sh" && n.Cores > 0.02 }) {
		t.Errorf("the spinning sh is not among the top others: %v", top)
	}
	if rss, err := PeakRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("PeakRSS(self) = %d, %v", rss, err)
	}
}
