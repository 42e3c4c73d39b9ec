package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/processor"
)

// throughput is one throughput measurement.
type throughput struct {
	records int64
	// rate is the steady rate: input records committed per second from the
	// first committed batch (after every instance owns its final
	// partitions and is restored) to the last.
	rate float64
	// wall is the time from the start to the last commit, group join and
	// restores included.
	wall time.Duration
	// cpu is where the CPU went over the window rate is taken over (nil
	// if unknown).
	cpu *machine.CPUUse
	// store is what orderflow's state stores flushed and compacted in
	// that window (nil for the ceilings).
	store *storeWork
}

// storeWork is the work of orderflow's Pebble stores (summed over the
// instances) between two samples of their metrics.
type storeWork struct {
	flushes, compactions         float64
	flushedBytes, compactedBytes float64
}

// sampleStores reads the store counters of the processors' metrics.
func sampleStores(procs []*processor.Processor) storeWork {
	var w storeWork
	fields := map[string]*float64{
		"orderflow_store_flushes_total":         &w.flushes,
		"orderflow_store_flushed_bytes_total":   &w.flushedBytes,
		"orderflow_store_compactions_total":     &w.compactions,
		"orderflow_store_compacted_bytes_total": &w.compactedBytes,
	}
	for _, p := range procs {
		mfs, _ := p.Gatherer().Gather()
		for _, mf := range mfs {
			if f := fields[mf.GetName()]; f != nil {
				for _, m := range mf.GetMetric() {
					*f += m.GetCounter().GetValue()
				}
			}
		}
	}
	return w
}

func (w storeWork) sub(v storeWork) *storeWork {
	return &storeWork{w.flushes - v.flushes, w.compactions - v.compactions, w.flushedBytes - v.flushedBytes, w.compactedBytes - v.compactedBytes}
}

func (w *storeWork) String() string {
	return fmt.Sprintf("%.0f flush(es) writing %.1f MiB, %.0f compaction(s) writing %.1f MiB",
		w.flushes, w.flushedBytes/(1<<20), w.compactions, w.compactedBytes/(1<<20))
}

// watch polls progress until the committed records reach total, sampling
// the CPU at the start and end of the rate's window; window, if not nil,
// is called there too (end false, then true), before the window's clock
// starts and after it stops.
func watch(ctx context.Context, total int64, cpu *machine.Sampler, window func(end bool), progress func() (committed int64, ready bool)) (throughput, error) {
	if window == nil {
		window = func(bool) {}
	}
	start, s0 := time.Now(), cpu.Snapshot()
	var (
		t0  time.Time
		c0  int64
		sT0 machine.Snapshot
	)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c, _ := progress()
			return throughput{}, fmt.Errorf("%d of %d records committed: %w", c, total, ctx.Err())
		case <-tick.C:
		}
		c, ready := progress()
		if t0.IsZero() && ready && c > 0 {
			window(false)
			c, _ = progress()
			t0, c0, sT0 = time.Now(), c, cpu.Snapshot()
		}
		if c < total {
			continue
		}
		now, sEnd := time.Now(), cpu.Snapshot()
		window(true)
		t := throughput{records: c, wall: now.Sub(start)}
		if c > c0 && !t0.IsZero() && now.Sub(t0) > 0 {
			t.rate, t.cpu = float64(c-c0)/now.Sub(t0).Seconds(), machine.Use(sT0, sEnd, c-c0)
		} else { // all in one batch (tiny mode)
			t.rate, t.cpu = float64(c)/t.wall.Seconds(), machine.Use(s0, sEnd, c)
		}
		return t, nil
	}
}

// outputTopics are app's output topics, reading input.
func outputTopics(app, input string) processor.Topics {
	return processor.Topics{Events: input, Status: app + ".status", Rejections: app + ".rejections", DLQ: app + ".dlq"}
}

// createOutputs creates the output topics and the changelog of app (the
// ceiling's; orderflow creates its own), deleted when the run ends.
func (h *harness) createOutputs(ctx context.Context, topics processor.Topics, changelog string) error {
	h.deleteAtEnd(topics.Status, topics.Rejections, topics.DLQ, changelog)
	for _, t := range []string{topics.Status, topics.Rejections, topics.DLQ} {
		if err := h.createTopic(ctx, t, nil); err != nil {
			return err
		}
	}
	compact := "compact"
	return h.createTopic(ctx, changelog, map[string]*string{"cleanup.policy": &compact})
}

// ceilingConfig is the ceiling program's configuration for app.
func (h *harness) ceilingConfig(app string, topics processor.Topics, transactional bool) ceilingConfig {
	return ceilingConfig{
		brokers: h.o.Brokers, input: topics.Events, group: app, transactional: transactional,
		commitInterval: h.o.commitInterval, maxBatch: h.o.maxBatchRecords, sessions: h.o.Threads,
		topics: topics, changelog: processor.ChangelogTopic(app), sizes: h.input.lookup, payload: ceilingPayload,
		committed: new(atomic.Int64), aborted: new(atomic.Int64), assigned: new(atomic.Int32),
	}
}

// noteAborts adds a check for the transactions the ceiling aborted.
func (h *harness) noteAborts(name string, c ceilingConfig) {
	if n := c.aborted.Load(); n > 0 {
		h.rep.Checks = append(h.rep.Checks, fmt.Sprintf("%s: %d aborted transactions (their batches were read again)", name, n))
	}
}

// ceiling measures the ceiling program on the preloaded input.
func (h *harness) ceiling(ctx context.Context, name string, transactional bool) (throughput, error) {
	app := h.name(name)
	c := h.ceilingConfig(app, outputTopics(app, h.input.topic), transactional)
	if err := h.createOutputs(ctx, c.topics, c.changelog); err != nil {
		return throughput{}, err
	}
	defer h.noteAborts(name, c)
	return h.measure(ctx, func(ctx context.Context) error { return runCeiling(ctx, c) }, nil, func() (int64, bool) {
		return c.committed.Load(), c.assigned.Load() == h.o.partitions
	})
}

// measure runs run until progress reports the preloaded input committed,
// or run fails (see watch for window).
func (h *harness) measure(ctx context.Context, run func(context.Context) error, window func(end bool), progress func() (committed int64, ready bool)) (throughput, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := run(rctx)
		cancel()
		done <- err
	}()
	t, err := watch(rctx, h.input.records, h.cpu, window, progress)
	cancel()
	return t, errors.Join(<-done, err)
}

// throughputs runs the selected throughput measurements (ceiling, eos,
// alos) Options.Rounds times, in rounds: each round runs the transactional
// ceiling, exactly_once, the plain ceiling and at_least_once back to back,
// so each figure is measured next to its ceiling and a change in the
// machine's load touches both. The report holds each figure's best round.
func (h *harness) throughputs(ctx context.Context) error {
	ms := []struct {
		key, step, name string
		run             func(ctx context.Context, name string) (throughput, error)
	}{
		{"ceiling_eos", "ceiling", "ceiling_eos", func(ctx context.Context, name string) (throughput, error) { return h.ceiling(ctx, name, true) }},
		{"orderflow_eos", "eos", "eos", func(ctx context.Context, name string) (throughput, error) {
			return h.orderflow(ctx, name, processor.ExactlyOnce, 1)
		}},
		{"ceiling_plain", "ceiling", "ceiling_plain", func(ctx context.Context, name string) (throughput, error) { return h.ceiling(ctx, name, false) }},
		{"orderflow_alos", "alos", "alos", func(ctx context.Context, name string) (throughput, error) {
			return h.orderflow(ctx, name, processor.AtLeastOnce, 1)
		}},
	}
	in, err := h.roundsInput(ctx)
	if err != nil {
		return err
	}
	whole := h.input
	h.input = in
	defer func() { h.input = whole }()
	rounds := map[string][]throughput{}
	for round := 1; round <= h.o.Rounds; round++ {
		for _, m := range ms {
			if !h.o.runs(m.step) {
				continue
			}
			if h.cpu.FindBroker(ctx) {
				h.logf("cpu: %s", h.cpu)
			}
			h.settle()
			t, err := m.run(ctx, fmt.Sprintf("%s-%d", m.name, round))
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", m.key, round, err)
			}
			h.logf("round %d/%d: %s: %s", round, h.o.Rounds, m.key, t)
			rounds[m.key] = append(rounds[m.key], t)
		}
	}
	for _, m := range ms {
		if ts := rounds[m.key]; len(ts) > 0 {
			h.rep.setThroughput(m.key, ts...)
		}
		for i, t := range rounds[m.key] {
			if secs := t.seconds(); !h.o.Tiny && secs < minRoundSeconds {
				h.rep.Checks = append(h.rep.Checks, fmt.Sprintf("%s round %d lasted %.1fs at its rate, under %ds: its input was sized on the warm-up's fastest ceiling", m.key, i+1, secs, minRoundSeconds))
			}
		}
	}
	h.rep.notePaired("orderflow_eos", rounds["orderflow_eos"], rounds["ceiling_eos"])
	h.rep.notePaired("orderflow_alos", rounds["orderflow_alos"], rounds["ceiling_plain"])
	return nil
}

// seconds is how long the rate's window lasted (the whole run in tiny
// mode's single batch).
func (t throughput) seconds() float64 {
	if t.rate <= 0 {
		return 0
	}
	return float64(t.records) / t.rate
}

// minRoundSeconds is how long a throughput round lasts at least: a round
// of 2 s moved by ±20% with one stall of the broker or the machine.
const minRoundSeconds = 5

// roundsInput returns the input of the throughput rounds: the preloaded
// workload, or, if the fastest ceiling of the warm-up would read it in
// under minRoundSeconds (with a margin), a topic of its own holding it as
// many times over as that takes (each pass under new order ids, as the
// latency measurement's input; the last pass may be partial). Tiny mode
// and runs without a warm-up use the workload once and twice over.
func (h *harness) roundsInput(ctx context.Context) (*preloaded, error) {
	n := h.enc.len()
	switch {
	case h.o.Tiny:
	case h.fastest == 0:
		n *= 2
	default:
		n = max(n, int(1.3*minRoundSeconds*h.fastest))
	}
	n = min(n, maxLatencyPasses*h.enc.len())
	if n == h.enc.len() {
		return h.input, nil
	}
	topic := h.name("rounds-events")
	h.deleteAtEnd(topic)
	if err := h.createTopic(ctx, topic, nil); err != nil {
		return nil, err
	}
	start := time.Now()
	in := newLatencyInput(h.enc, n)
	p, err := preloadRecords(ctx, h.o.Brokers, topic, h.o.partitions, n, in.record)
	if err != nil {
		return nil, err
	}
	h.logf("preloaded %d records (%.1f passes over the workload) into %s for the throughput rounds in %v", p.records,
		float64(n)/float64(h.enc.len()), topic, time.Since(start).Round(time.Millisecond))
	h.rep.Workload.RoundRecords = p.records
	return p, nil
}

// String is the log's line on t.
func (t throughput) String() string {
	s := fmt.Sprintf("%.0f records/s (wall %v); %v", t.rate, t.wall.Round(time.Millisecond), t.cpu)
	if t.store != nil {
		s += "; store in the window: " + t.store.String()
	}
	return s
}

// processorConfig is the configuration of an orderflow instance of app,
// with the harness's settings.
func (h *harness) processorConfig(app, instance string, topics processor.Topics, g processor.Guarantee) processor.Config {
	cfg := processor.DefaultConfig()
	cfg.Brokers = h.o.Brokers
	cfg.AppID, cfg.InstanceID = app, instance
	cfg.Topics = topics
	cfg.Guarantee = g
	cfg.CommitInterval = h.o.commitInterval
	cfg.MaxBatchRecords = h.o.maxBatchRecords
	cfg.Threads = h.o.Threads
	cfg.Partitions = h.o.partitions
	cfg.StateDir = filepath.Join(h.work, app, instance)
	cfg.Logger = h.plog.With("run", app)
	return cfg
}

// orderflow measures n in-process orderflow instances on the preloaded
// input, with a fresh app id and state dirs.
func (h *harness) orderflow(ctx context.Context, name string, g processor.Guarantee, n int) (throughput, error) {
	app := h.name(name)
	topics := outputTopics(app, h.input.topic)
	procs := make([]*processor.Processor, n)
	for i := range procs {
		cfg := h.processorConfig(app, fmt.Sprintf("i%d", i), topics, g)
		if i == 0 {
			if err := processor.EnsureTopics(ctx, h.adm, cfg); err != nil {
				return throughput{}, err
			}
			h.deleteAtEnd(topics.Status, topics.Rejections, topics.DLQ, processor.ChangelogTopic(app))
			defer os.RemoveAll(filepath.Dir(cfg.StateDir))
		}
		p, err := processor.New(cfg)
		if err != nil {
			return throughput{}, err
		}
		procs[i] = p
	}
	t, err := h.runProcessors(ctx, procs)
	if err != nil {
		return t, err
	}
	h.checkCounts(name, procs)
	return t, nil
}

// runProcessors runs procs until they have committed the preloaded input.
func (h *harness) runProcessors(ctx context.Context, procs []*processor.Processor) (throughput, error) {
	var store [2]storeWork // at the window's start and end
	t, err := h.measure(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, len(procs))
		for i, p := range procs {
			wg.Go(func() {
				if errs[i] = p.Run(ctx); errs[i] != nil {
					cancel()
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}, func(end bool) {
		i := 0
		if end {
			i = 1
		}
		store[i] = sampleStores(procs)
	}, func() (int64, bool) {
		var events int64
		owned, ready := 0, true
		for _, p := range procs {
			events += p.Stats().Events
			a := len(p.Assigned())
			owned += a
			ready = ready && p.Ready() && (a > 0 || len(procs) > int(h.o.partitions))
		}
		return events, ready && owned == int(h.o.partitions)
	})
	t.store = store[1].sub(store[0])
	return t, err
}

// checkCounts adds a check of what procs counted against what the
// workload should give.
func (h *harness) checkCounts(name string, procs []*processor.Processor) {
	var s processor.Stats
	for _, p := range procs {
		ps := p.Stats()
		s.Events += ps.Events
		s.Transitions += ps.Transitions
		s.Rejections += ps.Rejections
		s.DLQ += ps.DLQ
		s.Aborts += ps.Aborts
		s.Batches += ps.Batches
	}
	x := h.input.expect
	check := fmt.Sprintf("%s: %d events, %d transitions, %d rejections, %d dlq, %d batches, %d aborts",
		name, s.Events, s.Transitions, s.Rejections, s.DLQ, s.Batches, s.Aborts)
	if s.Events != x.events || s.Transitions != x.transitions || s.Rejections != x.rejections || s.DLQ != x.dlq {
		check += fmt.Sprintf(" — differs from the expected %d/%d/%d/%d (at_least_once may repeat work after a rebalance)",
			x.events, x.transitions, x.rejections, x.dlq)
	} else {
		check += " — as expected"
	}
	h.rep.Checks = append(h.rep.Checks, check)
}

// scaling measures exactly_once with 1, 2 and 4 instances; the 1-instance
// figure is the exactly_once measurement's, where it ran.
func (h *harness) scaling(ctx context.Context) error {
	for _, n := range []int{1, 2, 4} {
		key := fmt.Sprintf("scaling_%d", n)
		if t, ok := h.rep.throughputs["orderflow_eos"]; ok && n == 1 {
			h.rep.setThroughput(key, t)
			continue
		}
		h.settle()
		t, err := h.orderflow(ctx, key, processor.ExactlyOnce, n)
		if err != nil {
			return fmt.Errorf("%d instances: %w", n, err)
		}
		h.logf("orderflow exactly_once x%d: %s", n, t)
		h.rep.setThroughput(key, t)
	}
	return nil
}
