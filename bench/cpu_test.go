package bench

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Fields 3..52 of a real /proc/PID/stat (a JVM), after the comm.
	tail := " S 1 13753 13753 0 -1 4194304 199372 0 1035 0 5004 1329 0 0 20 0 108 0 1616122 3815223296 190924 " +
		"18446744073709551615 94365335187456 94365335188341 140723982477648 0 0 0 0 2 16800973 0 0 0 17 1 0 0 0 0 0 " +
		"94365335199040 94365335199768 94365489930240 140723982481686 140723982482069 140723982482069 140723982483434 0\n"
	for _, comm := range []string{"java", "a b", "x) (y", ")", "((", ") S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15"} {
		p, err := parseProcStat([]byte("13753 (" + comm + ")" + tail))
		if err != nil {
			t.Fatalf("comm %q: %v", comm, err)
		}
		if p.comm != comm || p.utime != 5004 || p.stime != 1329 || p.starttime != 1616122 {
			t.Errorf("comm %q: got %+v", comm, p)
		}
	}
	for _, bad := range []string{"", "12 java S 1", "12 (java) S 1 2 3", "12 (java)" + strings.Replace(tail, "5004", "x", 1)} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseMachineStat(t *testing.T) {
	stat := `cpu  1694086 7 316482 1261609 13443 3 11550 4692 100 5
cpu0 822968 0 152106 664128 4318 0 4536 2342 0 0
cpu1 871117 0 164376 597480 9124 0 7014 2350 0 0
intr 123 4 5
ctxt 99
cpu_freq_bogus 1
`
	m, err := parseMachineStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := machineStat{busy: 1694086 + 7 + 316482 + 3 + 11550, irq: 3 + 11550, idle: 1261609 + 13443, steal: 4692, cpus: 2}
	if m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	// An old kernel's four fields.
	m, err = parseMachineStat([]byte("cpu 10 20 30 40\ncpu0 10 20 30 40\n"))
	if err != nil || m != (machineStat{busy: 60, idle: 40, cpus: 1}) {
		t.Errorf("old kernel: %+v, %v", m, err)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu 1 2\n", "cpu 1 2 x 4 5\n"} {
		if _, err := parseMachineStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseNetTCP(t *testing.T) {
	// The kernel prints each 32-bit word of an address as it holds it:
	// 127.0.0.1 is 0100007F on a little-endian machine.
	hex8 := func(ip net.IP) string {
		out := ""
		for i := 0; i < len(ip); i += 4 {
			w := strconv.FormatUint(uint64(binary.NativeEndian.Uint32(ip[i:])), 16)
			out += strings.ToUpper(strings.Repeat("0", 8-len(w)) + w)
		}
		return out
	}
	v4 := net.ParseIP("127.0.0.1").To4()
	mapped := net.ParseIP("::ffff:127.0.0.1").To16()
	text := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: " + hex8(v4) + ":B024 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 781377 1 0 100 0 0 10 0\n" +
		"   1: " + hex8(v4) + ":B312 " + hex8(v4) + ":B024 01 00000000:00000000 02:000A3E14 00000000     0        0 782636 2 0 21 5 1 18 -1\n" +
		"   2: " + hex8(mapped) + ":0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 42 1 0 100 0 0 10 0\n"
	if binary.NativeEndian.Uint32([]byte{1, 0, 0, 0}) == 1 && !strings.Contains(text, "0100007F:B024") {
		t.Fatalf("little-endian encoding of 127.0.0.1 is not 0100007F: %s", text)
	}
	s, err := parseNetTCP([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 {
		t.Fatalf("got %d listening sockets, want 2: %+v", len(s), s)
	}
	if !s[0].ip.Equal(net.ParseIP("127.0.0.1")) || s[0].port != 45092 || s[0].inode != "781377" {
		t.Errorf("v4: %+v", s[0])
	}
	if !s[1].ip.Equal(net.ParseIP("127.0.0.1")) || s[1].port != 80 || s[1].inode != "42" {
		t.Errorf("v6: %+v (%s)", s[1], s[1].ip)
	}
	if _, err := parseNetTCP([]byte("header\n 0: zz:0050 0:0 0A 0 0 0 0 0 7 1\n")); err == nil {
		t.Error("bad address: no error")
	}
}

func TestAuxvValue(t *testing.T) {
	w := strconv.IntSize / 8
	var b []byte
	put := func(v uint64) {
		if w == 8 {
			b = binary.NativeEndian.AppendUint64(b, v)
		} else {
			b = binary.NativeEndian.AppendUint32(b, uint32(v))
		}
	}
	for _, kv := range [][2]uint64{{6, 4096}, {atClkTck, 250}, {0, 0}, {atClkTck, 999}} {
		put(kv[0])
		put(kv[1])
	}
	if v, ok := auxvValue(b, atClkTck); !ok || v != 250 {
		t.Errorf("AT_CLKTCK = %d, %v; want 250", v, ok)
	}
	if _, ok := auxvValue(b, 33); ok {
		t.Error("found an entry after AT_NULL")
	}
}

func TestCPUUse(t *testing.T) {
	hz := clockTicks()
	at := time.Unix(1000, 0)
	brokers := []brokerProc{{pid: 7, starttime: 1}}
	a := cpuSnapshot{at: at, self: 1000, selfOK: true, broker: 5000, brokers: brokers, brokerOK: true,
		jit: 300, gc: 40, threadOK: true, machine: machineStat{busy: 10000, irq: 100, idle: 50000, cpus: 2}, machOK: true}
	// 10 s on 2 cores: 20 s of CPU = 20*hz ticks: bench 8 s, broker 6 s,
	// irq 1 s, other 1 s, idle 4 s.
	tick := func(s float64) uint64 { return uint64(math.Round(s * hz)) }
	b := a
	b.at = at.Add(10 * time.Second)
	b.self += tick(8)
	b.broker += tick(6)
	b.jit += tick(2)
	b.gc += tick(0.5)
	b.machine.busy += tick(16)
	b.machine.irq += tick(1)
	b.machine.idle += tick(4)
	u := cpuUse(a, b, 1_000_000)
	if u == nil || u.BrokerUsPerRecord == nil || u.OtherCores == nil {
		t.Fatalf("got %+v", u)
	}
	near := func(name string, got, want float64) {
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("bench µs/record", u.BenchUsPerRecord, 8)
	near("broker µs/record", *u.BrokerUsPerRecord, 6)
	if u.BrokerJITUsPerRecord == nil || u.BrokerGCUsPerRecord == nil {
		t.Fatalf("no JIT/GC split: %+v", u)
	}
	near("broker JIT µs/record", *u.BrokerJITUsPerRecord, 2)
	near("broker GC µs/record", *u.BrokerGCUsPerRecord, 0.5)
	near("machine µs/record", u.MachineUsPerRecord, 16)
	near("bench cores", u.BenchCores, 0.8)
	near("broker cores", *u.BrokerCores, 0.6)
	near("irq cores", u.IRQCores, 0.1)
	near("other cores", *u.OtherCores, 0.1)
	near("idle %", u.IdlePercent, 20)
	if u.Cores != 2 || u.Records != 1_000_000 || len(u.BrokerPIDs) != 1 || u.Rough {
		t.Errorf("got %+v", u)
	}
	line := u.String()
	for _, want := range []string{"CPU per record: bench 8.00 µs, broker 6.00 µs (JIT 2.00, GC 0.50), machine", "idle 20%", "bench 0.80", "of 2 over 10.0s"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}

	// Threads unreadable at one end: no split, the broker total stays.
	a1 := a
	a1.threadOK = false
	if u := cpuUse(a1, b, 1_000_000); u == nil || u.BrokerUsPerRecord == nil || u.BrokerJITUsPerRecord != nil {
		t.Errorf("threads unknown: %+v", u)
	} else if strings.Contains(u.String(), "JIT") {
		t.Errorf("%q gives a JIT figure it does not have", u.String())
	}

	// Broker unknown: null, not zero.
	a2, b2 := a, b
	a2.brokerOK, a2.brokers, a2.why = false, nil, "no kafka.Kafka process"
	b2.brokerOK, b2.brokers, b2.why = false, nil, "no kafka.Kafka process"
	u = cpuUse(a2, b2, 1_000_000)
	if u == nil || u.BrokerUsPerRecord != nil || u.BrokerCores != nil || u.OtherCores != nil || u.BrokerUnknown == "" {
		t.Fatalf("unknown broker: %+v", u)
	}
	if line := u.String(); !strings.Contains(line, "broker unknown") {
		t.Errorf("%q does not say the broker is unknown", line)
	}
	// A restarted broker in the window: unknown too.
	b3 := b
	b3.brokers = []brokerProc{{pid: 8, starttime: 2}}
	if u := cpuUse(a, b3, 1); u == nil || u.BrokerUsPerRecord != nil {
		t.Errorf("restarted broker: %+v", u)
	}
	// Nothing known: nil.
	if u := cpuUse(cpuSnapshot{}, cpuSnapshot{}, 10); u != nil {
		t.Errorf("unknown snapshots: %+v", u)
	}
	if got := (*CPUUse)(nil).String(); got != "CPU unknown" {
		t.Errorf("nil CPUUse: %q", got)
	}
	var nilSampler *cpuSampler
	if s := nilSampler.snapshot(); s.selfOK {
		t.Errorf("nil sampler: %+v", s)
	}
}

// TestCPUSamplerLive reads this machine's /proc (Linux only): the bench
// process's CPU time grows as it burns CPU, and the broker lookup returns
// pids or a reason.
func TestCPUSamplerLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	s := newCPUSampler(context.Background(), []string{"127.0.0.1:1"})
	a := s.snapshot()
	if !a.selfOK || !a.machOK {
		t.Fatalf("snapshot: %+v", a)
	}
	if a.brokerOK {
		t.Errorf("a broker listening on port 1: %+v", a)
	}
	if s.describe() == "" || a.why == "" {
		t.Error("no reason for the unknown broker")
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	b := s.snapshot()
	u := cpuUse(a, b, 1000)
	if u == nil || u.BenchCores < 0.3 || u.Cores < 1 || !u.Rough {
		t.Errorf("after 300 ms of spinning: %+v (%d)", u, x)
	}
	if u != nil && u.BrokerUsPerRecord != nil {
		t.Errorf("broker known: %+v", u)
	}
	if hz := clockTicks(); hz != 100 {
		t.Logf("clock ticks %v/s", hz)
	}
	if brokers := os.Getenv("KAFKA_BROKERS"); brokers != "" {
		pids, why := findBrokerPIDs(context.Background(), strings.Split(brokers, ","))
		t.Logf("KAFKA_BROKERS %s: broker pids %v %s", brokers, pids, why)
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
	// This process's threads: readable, and no JVM threads among them.
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	jit, gc, ok := jvmThreadTicks(os.Getpid())
	if !ok || jit != 0 || gc != 0 {
		t.Errorf("jvmThreadTicks(self) = %d, %d, %v", jit, gc, ok)
	}
}

func TestTopOthers(t *testing.T) {
	a := map[int]procStat{
		1:  {comm: "java", utime: 100, stime: 10, starttime: 5},
		2:  {comm: "kworker/u8:1-flush-254:0", utime: 0, stime: 50, starttime: 2},
		3:  {comm: "kworker/1:1H-kblockd", utime: 0, stime: 50, starttime: 2},
		4:  {comm: "go", utime: 10, starttime: 7},
		5:  {comm: "old", utime: 500, starttime: 1}, // pid 5 reused below
		6:  {comm: "idle", utime: 7, starttime: 1},
		9:  {comm: "gone", utime: 1, starttime: 1},
		10: {comm: "compile", utime: 1, starttime: 9},
	}
	b := map[int]procStat{
		1:  {comm: "java", utime: 900, stime: 110, starttime: 5}, // the broker: left out
		2:  {comm: "kworker/u8:1-writeback", utime: 0, stime: 80, starttime: 2},
		3:  {comm: "kworker/1:1H-kblockd", utime: 0, stime: 70, starttime: 2},
		4:  {comm: "go", utime: 30, starttime: 7},
		5:  {comm: "new", utime: 40, starttime: 99},
		6:  {comm: "idle", utime: 7, starttime: 1},
		10: {comm: "compile", utime: 21, starttime: 9},
		11: {comm: "compile", utime: 20, starttime: 98},
	}
	cores := func(ticks uint64) float64 { return float64(ticks) / 100 } // over 1 s at 100 Hz
	got := topOthers(a, b, []brokerProc{{pid: 1, starttime: 5}}, cores, 3)
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

// TestAllProcsLive sees a spinning child process's CPU (Linux only).
func TestAllProcsLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	start := time.Now()
	a := allProcs()
	took := time.Since(start)
	if _, ok := a[os.Getpid()]; ok {
		t.Error("allProcs holds this process")
	}
	time.Sleep(500 * time.Millisecond)
	b := allProcs()
	wall := 0.5
	top := topOthers(a, b, nil, func(ticks uint64) float64 { return float64(ticks) / clockTicks() / wall }, 3)
	t.Logf("%d processes read in %v; top others %v", len(a), took, top)
	if !slices.ContainsFunc(top, func(n NamedCores) bool { return n.Name == "sh" && n.Cores > 0.2 }) {
		t.Errorf("the spinning sh is not among the top others: %v", top)
	}
}

// TestHeapFlags reads the -Xms/-Xmx flags off a process's command line,
// as the report does for the broker JVM.
func TestHeapFlags(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sh", "-c", "sleep 30; exit 0", "-server", "-Xms1g", "-Xmx1g", "-Xss1m")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	s := &cpuSampler{brokers: []brokerProc{{pid: cmd.Process.Pid}}}
	// Right after Start the child may still show this process's command
	// line: wait for the exec.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
		if strings.Contains(string(b), "sleep 30") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child command line %q", b)
		}
	}
	if got := s.heapFlags(); got != "-Xms1g -Xmx1g" {
		t.Errorf("heapFlags = %q, want %q", got, "-Xms1g -Xmx1g")
	}
	if got := (&cpuSampler{}).heapFlags(); got != "" {
		t.Errorf("no broker: %q", got)
	}
}
