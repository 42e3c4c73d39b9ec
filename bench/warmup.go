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
// spends a large share of its CPU in its JIT compiler for its first
// minutes under load, and more for every code path it meets the first
// time, where a production broker has been running for days. Each pass
// runs what the measurements make the broker do: both ceilings, orderflow
// exactly_once and at_least_once, and the transactional ceiling at a fixed
// rate (small produce and fetch requests). Passes repeat, at most
// WarmupPasses times, until the broker's JIT share over a pass falls under
// warmupJITShare (a broker whose threads cannot be read, a remote one,
// gets every pass) and the page cache has taken all but warmupFreeShare
// of the memory: on a VM that hands free memory back to its host, memory
// taken from the free lists is mapped again at first touch, which slows
// the broker down until its page cache has filled the memory, as a
// production broker's has.
func (h *harness) warmup(ctx context.Context) error {
	for pass := 1; pass <= h.o.WarmupPasses; pass++ {
		start, a := time.Now(), h.cpu.Snapshot()
		name := fmt.Sprintf("warmup-%d", pass)
		eos, err := h.ceiling(ctx, name+"-ceiling_eos", true)
		if err != nil {
			return err
		}
		plain, err := h.ceiling(ctx, name+"-ceiling_plain", false)
		if err != nil {
			return err
		}
		h.fastest = max(h.fastest, eos.rate, plain.rate)
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
		if _, err := h.latencyOf(ctx, name+"-latency", "ceiling", h.defaultSetting(), newLatencyInput(h.enc, n), rate, d/3); err != nil {
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
