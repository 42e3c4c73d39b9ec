package bench

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/processor"
)

// warmupJITShare is the broker's JIT share of its CPU under which the
// warm-up stops: below it the broker runs compiled code.
const warmupJITShare = 0.10

// warmupLatency bounds the fixed-rate part of a warm-up pass.
const warmupLatency = 6 * time.Second

// warmupFreeShare is the share of the machine's memory left free under
// which the warm-up may stop: the broker's page cache has taken the rest,
// as on a broker that has been running for a while.
const warmupFreeShare = 0.02

// WarmupPass is one pass of the broker warm-up.
type WarmupPass struct {
	Seconds float64 `json:"seconds"`
	// JITShare is the broker JVM's JIT compiler threads' share of its CPU
	// time over the pass; null if the broker's threads could not be read.
	JITShare *float64 `json:"jit_share"`
	// FreeShare is the share of the machine's memory free at the pass's
	// end (/proc/meminfo's MemFree of MemTotal); null if unknown.
	FreeShare *float64 `json:"free_share"`
}

// warmup runs the ceiling programs and orderflow on the preloaded input,
// unmeasured, until the broker has compiled its hot paths: a fresh JVM
// spends a third or more of its CPU in its JIT compiler for the first
// minutes under load (measured: 1.3 of 2.9 µs per record in the first
// transactional ceiling on a fresh broker, 2.6 of 5.9 µs in the first
// latency run), and more for every code path it meets the first time. A
// production broker has been running for days. Each pass runs what the
// measurements make the broker do: the transactional and the plain
// ceiling, orderflow exactly_once and at_least_once (with the ceilings
// alone, the broker still spent 0.39 µs per record compiling in the first
// two exactly_once rounds, against 0.05-0.12 in the later ones), and the
// transactional ceiling at a fixed rate (small produce and fetch
// requests); passes repeat until the broker's JIT share over a
// pass falls under warmupJITShare, at most WarmupPasses times. A broker
// whose threads cannot be read (a remote one) gets every pass.
//
// The passes also go on until the page cache has taken all but
// warmupFreeShare of the machine's memory (where /proc/meminfo can be
// read). On this project's VMs, memory the kernel takes from its free
// lists costs several times what recycled page cache does: the VM hands
// free memory back to its host (virtio-balloon free page reporting), and
// each page is mapped again at first touch. Measured on a fresh broker,
// the first throughput rounds, which took memory from the free lists, ran
// at 30-60% of the later ones' rate, with the broker's CPU per record 2-4
// times as high; 45% of its samples were the kernel zeroing new page cache
// pages for its index files (memset under filemap_fault), against 9% once
// kswapd recycled the page cache. A production broker's memory is full of
// page cache.
func (h *harness) warmup(ctx context.Context) error {
	for pass := 1; pass <= h.o.WarmupPasses; pass++ {
		start, a := time.Now(), h.cpu.Snapshot()
		name := fmt.Sprintf("warmup-%d", pass)
		eos, err := h.ceiling(ctx, name+"-ceiling_eos", true)
		if err != nil {
			return err
		}
		if _, err := h.ceiling(ctx, name+"-ceiling_plain", false); err != nil {
			return err
		}
		if _, err := h.orderflow(ctx, name+"-eos", processor.ExactlyOnce, 1); err != nil {
			return err
		}
		if _, err := h.orderflow(ctx, name+"-alos", processor.AtLeastOnce, 1); err != nil {
			return err
		}
		// Below the latency measurement's rate (half of orderflow's, which
		// is under the ceiling's), for three latency warm-ups or
		// warmupLatency, the shorter (slower if the input is too short for
		// that).
		d := min(3*h.o.LatencyWarmup, warmupLatency)
		rate := min(0.4*eos.rate, float64(h.enc.len())/d.Seconds())
		n := int(rate * d.Seconds())
		if _, err := h.latencyOf(ctx, name+"-latency", "ceiling", newLatencyInput(h.enc, n), rate, d/3); err != nil {
			return err
		}
		p := WarmupPass{Seconds: time.Since(start).Seconds(), JITShare: machine.JITShare(a, h.cpu.Snapshot()), FreeShare: machine.FreeShare()}
		h.rep.Warmup = append(h.rep.Warmup, p)
		h.logf("warm-up pass %d: %.1fs, broker JIT share %s, memory free %s", pass, p.Seconds, p.share(), p.free())
		if p.settled() {
			break
		}
		runtime.GC()
	}
	return nil
}

// settled reports whether the warm-up may stop after p: the broker's JIT
// has settled and the page cache has filled the memory (each where known).
func (p WarmupPass) settled() bool {
	return p.JITShare != nil && *p.JITShare < warmupJITShare &&
		(p.FreeShare == nil || *p.FreeShare < warmupFreeShare)
}

// free is FreeShare in percent, or "unknown".
func (p WarmupPass) free() string {
	if p.FreeShare == nil {
		return "unknown"
	}
	return fmt.Sprintf("%.0f%%", 100**p.FreeShare)
}

// share is JITShare in percent, or "unknown".
func (p WarmupPass) share() string {
	if p.JITShare == nil {
		return "unknown"
	}
	return fmt.Sprintf("%.0f%%", 100**p.JITShare)
}

// describeWarmup is the report's line on the warm-up.
func describeWarmup(ps []WarmupPass) string {
	if len(ps) == 0 {
		return "Broker warm-up: none."
	}
	shares, free := make([]string, len(ps)), make([]string, len(ps))
	var secs float64
	for i, p := range ps {
		shares[i], free[i] = p.share(), p.free()
		secs += p.Seconds
	}
	return fmt.Sprintf("Broker warm-up: %d pass(es) of the ceilings and orderflow on the input (%.0fs), unmeasured, until the broker JVM's JIT compiler took under %.0f%% of its CPU and the page cache had taken all but %.0f%% of the memory; JIT share by pass: %s; memory free after each: %s.",
		len(ps), secs, 100*warmupJITShare, 100*warmupFreeShare, strings.Join(shares, ", "), strings.Join(free, ", "))
}
