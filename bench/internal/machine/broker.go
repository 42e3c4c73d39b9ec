package machine

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// brokerProc is one broker JVM.
type brokerProc struct {
	pid   int
	start uint64
}

// findBrokers returns the broker JVMs on this machine that serve addrs
// (host:port): the processes whose command line runs the main class
// kafka.Kafka (deploy/kafka/start.sh execs `java ... kafka.Kafka
// server.properties`) and that hold a socket listening on one of addrs. If
// there are none, why says why.
func findBrokers(ctx context.Context, fs procfs.FS, addrs []string) (brokers []brokerProc, why string) {
	jvms, err := kafkaJVMs(fs)
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
	inodes, err := listeningInodes(fs, targets)
	if err != nil {
		return nil, fmt.Sprintf("cannot read the listening sockets (%v)", err)
	}
	var unreadable []int
	for _, p := range jvms {
		fds, err := p.FileDescriptorTargets()
		if err != nil {
			unreadable = append(unreadable, p.PID)
			continue
		}
		if !slices.ContainsFunc(fds, func(l string) bool { return inodes[l] }) {
			continue
		}
		t, err := timesOf(p)
		if err != nil {
			return nil, fmt.Sprintf("reading broker pid %d: %v", p.PID, err)
		}
		brokers = append(brokers, brokerProc{p.PID, t.start})
	}
	if len(brokers) > 0 {
		return brokers, ""
	}
	pids := make([]int, len(jvms))
	for i, p := range jvms {
		pids[i] = p.PID
	}
	why = fmt.Sprintf("none of the kafka.Kafka processes (pids %s) listens on %s", joinInts(pids), strings.Join(addrs, ","))
	if len(unreadable) > 0 {
		why += fmt.Sprintf("; cannot read the sockets of pid(s) %s (another user's?)", joinInts(unreadable))
	}
	return nil, why
}

// kafkaJVMs returns the processes whose command line has the argument
// kafka.Kafka.
func kafkaJVMs(fs procfs.FS) (procfs.Procs, error) {
	all, err := fs.AllProcs()
	if err != nil {
		return nil, err
	}
	var out procfs.Procs
	for _, p := range all {
		if args, err := p.CmdLine(); err == nil && slices.Contains(args, "kafka.Kafka") {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b procfs.Proc) int { return a.PID - b.PID })
	return out, nil
}

// hostPort is a resolved broker address.
type hostPort struct {
	ip   net.IP
	port uint64
}

// localTargets resolves addrs (host:port) and keeps the addresses of this
// machine (loopback, or an interface's).
func localTargets(ctx context.Context, addrs []string) []hostPort {
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
	var out []hostPort
	for _, a := range addrs {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			continue
		}
		ips := []net.IP{net.ParseIP(host)}
		if ips[0] == nil {
			ips = nil
			ias, _ := net.DefaultResolver.LookupIPAddr(ctx, host)
			for _, ia := range ias {
				ips = append(ips, ia.IP)
			}
		}
		for _, ip := range ips {
			if ip.IsLoopback() || slices.ContainsFunc(local, ip.Equal) {
				out = append(out, hostPort{ip, port})
			}
		}
	}
	return out
}

// tcpListen is the state LISTEN in /proc/net/tcp.
const tcpListen = 0x0A

// listeningInodes returns the sockets listening on one of targets (on
// their address or on every address), as /proc/PID/fd names them
// ("socket:[inode]").
func listeningInodes(fs procfs.FS, targets []hostPort) (map[string]bool, error) {
	v4, err4 := fs.NetTCP()
	v6, err6 := fs.NetTCP6()
	if err4 != nil && err6 != nil {
		return nil, err4
	}
	inodes := map[string]bool{}
	for _, l := range append(v4, v6...) {
		for _, t := range targets {
			if l.St == tcpListen && l.LocalPort == t.port && (l.LocalAddr.IsUnspecified() || l.LocalAddr.Equal(t.ip)) {
				inodes[fmt.Sprintf("socket:[%d]", l.Inode)] = true
			}
		}
	}
	return inodes, nil
}

// heapFlags returns the -Xms and -Xmx flags of the processes' command
// lines, once each.
func heapFlags(fs procfs.FS, brokers []brokerProc) string {
	var flags []string
	for _, bp := range brokers {
		p, err := fs.Proc(bp.pid)
		if err != nil {
			continue
		}
		args, _ := p.CmdLine()
		for _, a := range args {
			if (strings.HasPrefix(a, "-Xmx") || strings.HasPrefix(a, "-Xms")) && !slices.Contains(flags, a) {
				flags = append(flags, a)
			}
		}
	}
	return strings.Join(flags, " ")
}

// jvmThreadSecs sums the CPU time of a HotSpot JVM's JIT compiler threads
// ("C1 CompilerThread0", "C2 CompilerThre" as the kernel cuts names to 15
// bytes) and garbage collector threads ("GC Thread#0", "G1 Conc#0", "G1
// Main Marker", "G1 Refine#0", "G1 Service", ...).
func jvmThreadSecs(fs procfs.FS, pid int) (jit, gc float64, ok bool) {
	threads, err := fs.AllThreads(pid)
	if err != nil || len(threads) == 0 {
		return 0, 0, false
	}
	for _, th := range threads {
		t, err := timesOf(th)
		if err != nil {
			continue // the thread ended
		}
		switch jvmThreadKind(t.comm) {
		case "jit":
			jit += t.secs
		case "gc":
			gc += t.secs
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
