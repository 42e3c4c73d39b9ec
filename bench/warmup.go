package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

// warmupJITShare is the broker's JIT share of its CPU under which the
// warm-up stops: below it the broker runs compiled code.
const warmupJITShare = 0.10

// warmupLatency bounds the fixed-rate part of a warm-up pass.
const warmupLatency = 6 * time.Second

// WarmupPass is one pass of the broker warm-up.
type WarmupPass struct {
	Seconds float64 `json:"seconds"`
	// JITShare is the broker JVM's JIT compiler threads' share of its CPU
	// time over the pass; null if the broker's threads could not be read.
	JITShare *float64 `json:"jit_share"`
}

// warmup runs the ceiling programs on the preloaded input, unmeasured,
// until the broker has compiled its hot paths: a freshly started JVM
// spends a third or more of its CPU in its JIT compiler for the first
// minutes under load (measured: 1.3 of 2.9 µs per record in the first
// transactional ceiling on a fresh broker, 2.6 of 5.9 µs in the first
// latency run), and more for every code path it meets the first time. A
// production broker has been running for days. Each pass runs what the
// measurements make the broker do: the transactional and the plain
// ceiling, and the transactional ceiling at a fixed rate (small produce
// and fetch requests); passes repeat until the broker's JIT share over a
// pass falls under warmupJITShare, at most WarmupPasses times. A broker
// whose threads cannot be read (a remote one) gets every pass.
func (h *harness) warmup(ctx context.Context) error {
	for pass := 1; pass <= h.o.WarmupPasses; pass++ {
		start, a := time.Now(), h.cpu.snapshot()
		name := fmt.Sprintf("warmup-%d", pass)
		eos, err := h.ceiling(ctx, name+"-ceiling_eos", true, "")
		if err != nil {
			return err
		}
		if _, err := h.ceiling(ctx, name+"-ceiling_plain", false, ""); err != nil {
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
		p := WarmupPass{Seconds: time.Since(start).Seconds(), JITShare: jitShare(a, h.cpu.snapshot())}
		h.rep.Warmup = append(h.rep.Warmup, p)
		h.logf("warm-up pass %d: %.1fs, broker JIT share %s", pass, p.Seconds, p.share())
		if p.JITShare != nil && *p.JITShare < warmupJITShare {
			break
		}
		runtime.GC()
	}
	return nil
}

// share is JITShare in percent, or "unknown".
func (p WarmupPass) share() string {
	if p.JITShare == nil {
		return "unknown"
	}
	return fmt.Sprintf("%.0f%%", 100**p.JITShare)
}

// jitShare is the broker's JIT threads' share of its CPU between two
// snapshots; nil if unknown.
func jitShare(a, b cpuSnapshot) *float64 {
	if !a.brokerOK || !b.brokerOK || !a.threadOK || !b.threadOK || !slices.Equal(a.brokers, b.brokers) ||
		b.broker <= a.broker || b.jit < a.jit {
		return nil
	}
	s := float64(b.jit-a.jit) / float64(b.broker-a.broker)
	return &s
}

// describeWarmup is the report's line on the warm-up.
func describeWarmup(ps []WarmupPass) string {
	if len(ps) == 0 {
		return "Broker warm-up: none."
	}
	shares := make([]string, len(ps))
	var secs float64
	for i, p := range ps {
		shares[i] = p.share()
		secs += p.Seconds
	}
	return fmt.Sprintf("Broker warm-up: %d pass(es) of the ceilings on the input (%.0fs), unmeasured, until the broker JVM's JIT compiler took under %.0f%% of its CPU; JIT share by pass: %s.",
		len(ps), secs, 100*warmupJITShare, strings.Join(shares, ", "))
}
