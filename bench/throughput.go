package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
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
	for _, p := range procs {
		mfs, err := p.Gatherer().Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			var f *float64
			switch mf.GetName() {
			case "orderflow_store_flushes_total":
				f = &w.flushes
			case "orderflow_store_flushed_bytes_total":
				f = &w.flushedBytes
			case "orderflow_store_compactions_total":
				f = &w.compactions
			case "orderflow_store_compacted_bytes_total":
				f = &w.compactedBytes
			default:
				continue
			}
			for _, m := range mf.GetMetric() {
				*f += m.GetCounter().GetValue()
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

// watch polls progress until the committed records reach total. cpu, if
// not nil, samples the CPU at the start and end of the rate's window, and
// window is called there too (end false, then true).
func watch(ctx context.Context, total int64, cpu *machine.Sampler, window func(end bool), progress func() (committed int64, ready bool)) (throughput, error) {
	start := time.Now()
	s0 := cpu.Snapshot()
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
		now := time.Now()
		if t0.IsZero() && ready && c > 0 {
			// Before the window's clock starts: the hook's own work
			// (reading metrics, starting a profile) is not the window's.
			window(false)
			c, _ = progress()
			now = time.Now()
			t0, c0 = now, c
			sT0 = cpu.Snapshot()
		}
		if c < total {
			continue
		}
		sEnd := cpu.Snapshot()
		window(true)
		t := throughput{records: c, wall: now.Sub(start)}
		if c > c0 && !t0.IsZero() && now.Sub(t0) > 0 {
			t.rate = float64(c-c0) / now.Sub(t0).Seconds()
			t.cpu = machine.Use(sT0, sEnd, c-c0)
		} else {
			t.rate = float64(c) / t.wall.Seconds() // all in one batch (tiny mode)
			t.cpu = machine.Use(s0, sEnd, c)
		}
		return t, nil
	}
}

func (h *harness) outputTopics(app string) processor.Topics {
	return processor.Topics{
		Events:     h.input.topic,
		Status:     app + ".status",
		Rejections: app + ".rejections",
		DLQ:        app + ".dlq",
	}
}

// ceiling measures the ceiling program on the preloaded input.
func (h *harness) ceiling(ctx context.Context, name string, transactional bool, profileDir string) (throughput, error) {
	app := h.name(name)
	topics := h.outputTopics(app)
	changelog := processor.ChangelogTopic(app)
	for _, t := range []string{topics.Status, topics.Rejections, topics.DLQ} {
		if err := h.createTopic(ctx, t, nil); err != nil {
			return throughput{}, err
		}
	}
	compact := "compact"
	if err := h.createTopic(ctx, changelog, map[string]*string{"cleanup.policy": &compact}); err != nil {
		return throughput{}, err
	}
	defer h.deleteAtEnd(topics.Status, topics.Rejections, topics.DLQ, changelog)
	var committed, aborted atomic.Int64
	var assigned atomic.Int32
	var prof *profile
	if profileDir != "" {
		var err error
		if prof, err = startProfile(profileDir, ""); err != nil {
			return throughput{}, err
		}
		defer prof.stop()
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- runCeiling(rctx, ceilingConfig{
			brokers: h.o.Brokers, input: h.input.topic, group: app, transactional: transactional,
			commitInterval: h.o.CommitInterval, maxBatch: h.o.MaxBatchRecords, sessions: h.o.Threads,
			topics: topics, changelog: changelog, sizes: h.input.lookup,
			payload: h.payload(), extra: h.o.ClientOpts, committed: &committed, aborted: &aborted, assigned: &assigned,
		})
	}()
	defer func() {
		if n := aborted.Load(); n > 0 {
			h.rep.Checks = append(h.rep.Checks, fmt.Sprintf("%s: %d aborted transactions (their batches were read again)", name, n))
		}
	}()
	var rerr error
	exited := false
	t, err := watch(rctx, h.input.records, h.cpu, prof.window, func() (int64, bool) {
		select {
		case rerr = <-done:
			exited = true
			cancel()
		default:
		}
		return committed.Load(), assigned.Load() == h.o.Partitions
	})
	cancel()
	if !exited {
		rerr = <-done
	}
	if rerr != nil {
		return t, rerr
	}
	return t, err
}

// throughputs runs the selected throughput measurements (ceiling, eos,
// alos) Options.Rounds times, in rounds: each round runs the transactional
// ceiling, exactly_once, the plain ceiling and at_least_once back to back,
// so each figure is measured next to its ceiling and a change in the
// machine's load touches both. The report holds each figure's best round.
func (h *harness) throughputs(ctx context.Context) error {
	type measurement struct {
		key, step string
		run       func(ctx context.Context, round int) (throughput, error)
	}
	ms := []measurement{
		{"ceiling_eos", "ceiling", func(ctx context.Context, round int) (throughput, error) {
			return h.ceiling(ctx, fmt.Sprintf("ceiling_eos-%d", round), true, "")
		}},
		{"orderflow_eos", "eos", func(ctx context.Context, round int) (throughput, error) {
			return h.orderflow(ctx, fmt.Sprintf("eos-%d", round), processor.ExactlyOnce, 1, h.profileDir(round, ""))
		}},
		{"ceiling_plain", "ceiling", func(ctx context.Context, round int) (throughput, error) {
			return h.ceiling(ctx, fmt.Sprintf("ceiling_plain-%d", round), false, h.profileDir(round, "ceiling_plain"))
		}},
		{"orderflow_alos", "alos", func(ctx context.Context, round int) (throughput, error) {
			return h.orderflow(ctx, fmt.Sprintf("alos-%d", round), processor.AtLeastOnce, 1, h.profileDir(round, "alos"))
		}},
	}
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
			t, err := m.run(ctx, round)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", m.key, round, err)
			}
			store := ""
			if t.store != nil {
				store = "; store in the window: " + t.store.String()
			}
			h.logf("round %d/%d: %s: %.0f records/s (wall %v); %v%s", round, h.o.Rounds, m.key, t.rate, t.wall.Round(time.Millisecond), t.cpu, store)
			rounds[m.key] = append(rounds[m.key], t)
		}
	}
	for _, m := range ms {
		if ts := rounds[m.key]; len(ts) > 0 {
			h.rep.setThroughput(m.key, ts...)
		}
	}
	h.rep.notePaired("orderflow_eos", rounds["orderflow_eos"], rounds["ceiling_eos"])
	h.rep.notePaired("orderflow_alos", rounds["orderflow_alos"], rounds["ceiling_plain"])
	return nil
}

// profileDir is where round's measurement writes its profiles (sub, inside
// Options.Profile): only the last round is profiled, as round 1, the first
// after the warm-up, is often disturbed. "" means no profile.
func (h *harness) profileDir(round int, sub string) string {
	if round != h.o.Rounds || h.o.Profile == "" {
		return ""
	}
	return filepath.Join(h.o.Profile, sub)
}

// orderflow measures n in-process orderflow instances on the preloaded
// input, with a fresh app id and state dirs.
func (h *harness) orderflow(ctx context.Context, name string, g processor.Guarantee, n int, profileDir string) (throughput, error) {
	app := h.name(name)
	base := processor.DefaultConfig()
	base.Brokers = h.o.Brokers
	base.AppID = app
	base.Topics = h.outputTopics(app)
	base.Guarantee = g
	base.CommitInterval = h.o.CommitInterval
	base.MaxBatchRecords = h.o.MaxBatchRecords
	base.Threads = h.o.Threads
	base.Partitions = h.o.Partitions
	base.Logger = h.plog.With("run", name)
	base.KafkaOpts = h.o.ClientOpts
	if err := processor.EnsureTopics(ctx, h.adm, base); err != nil {
		return throughput{}, err
	}
	defer h.deleteAtEnd(base.Topics.Status, base.Topics.Rejections, base.Topics.DLQ, processor.ChangelogTopic(app))
	stateDir := filepath.Join(h.work, name)
	defer os.RemoveAll(stateDir)

	procs := make([]*processor.Processor, n)
	for i := range procs {
		cfg := base
		cfg.InstanceID = fmt.Sprintf("i%d", i)
		cfg.StateDir = filepath.Join(stateDir, cfg.InstanceID)
		p, err := processor.New(cfg)
		if err != nil {
			return throughput{}, err
		}
		procs[i] = p
	}
	var prof *profile
	if profileDir != "" {
		var err error
		if prof, err = startProfile(profileDir, ""); err != nil {
			return throughput{}, err
		}
		defer prof.stop()
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(rctx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	var store0, store1 storeWork
	t, err := watch(rctx, h.input.records, h.cpu, func(end bool) {
		if end {
			prof.window(true) // first: the sampling is not the window's work
			store1 = sampleStores(procs)
		} else {
			store0 = sampleStores(procs)
			prof.window(false)
		}
	}, func() (int64, bool) {
		var events int64
		owned := 0
		ready := true
		for _, p := range procs {
			events += p.Stats().Events
			a := len(p.Assigned())
			owned += a
			ready = ready && p.Ready() && (a > 0 || n > int(h.o.Partitions))
		}
		return events, ready && owned == int(h.o.Partitions)
	})
	cancel()
	if err == nil {
		t.store = store1.sub(store0)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	if err != nil {
		return t, err
	}
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
	x := h.enc.expect
	check := fmt.Sprintf("%s: %d events, %d transitions, %d rejections, %d dlq, %d batches, %d aborts",
		name, s.Events, s.Transitions, s.Rejections, s.DLQ, s.Batches, s.Aborts)
	if s.Events != x.events || s.Transitions != x.transitions || s.Rejections != x.rejections || s.DLQ != x.dlq {
		check += fmt.Sprintf(" — differs from the expected %d/%d/%d/%d (at_least_once may repeat work after a rebalance)",
			x.events, x.transitions, x.rejections, x.dlq)
	} else {
		check += " — as expected"
	}
	h.rep.Checks = append(h.rep.Checks, check)
	return t, nil
}

// profile writes a measurement's profiles into dir: the allocations
// profile at its start (allocs-before.pprof, the baseline to diff with:
// go tool pprof -diff_base allocs-before.pprof allocs.pprof) and at its
// end (allocs.pprof), and a CPU profile (cpu.pprof). The CPU profile runs
// from the start; window(false) starts it again, dropping what it had, and
// window(true) ends it: a throughput measurement's CPU profile covers the
// window its rate is taken over, not the start-up and the shutdown around
// it (or, like the rate, the whole run when the window never starts).
type profile struct {
	dir, prefix string
	cpu         *os.File // while the CPU profile runs
}

// startProfile writes the allocations baseline and starts the CPU profile;
// stop ends it all.
func startProfile(dir, prefix string) (*profile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &profile{dir: dir, prefix: prefix}
	p.writeAllocs("allocs-before.pprof")
	if err := p.startCPU(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *profile) writeAllocs(name string) {
	f, err := os.Create(filepath.Join(p.dir, p.prefix+name))
	if err == nil {
		runtime.GC()
		_ = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
}

// startCPU starts the CPU profile into a new (or truncated) cpu.pprof.
func (p *profile) startCPU() error {
	f, err := os.Create(filepath.Join(p.dir, p.prefix+"cpu.pprof"))
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.cpu = f
	return nil
}

func (p *profile) stopCPU() {
	if p.cpu != nil {
		pprof.StopCPUProfile()
		p.cpu.Close()
		p.cpu = nil
	}
}

// window starts the CPU profile again at the window's start (end false)
// and stops it at its end (end true). A nil profile does nothing.
func (p *profile) window(end bool) {
	if p == nil {
		return
	}
	p.stopCPU()
	if !end {
		_ = p.startCPU() // on failure, no CPU profile: the round still runs
	}
}

// stop ends the CPU profile if it runs and writes the allocations profile.
func (p *profile) stop() {
	if p == nil {
		return
	}
	p.stopCPU()
	p.writeAllocs("allocs.pprof")
}

func (h *harness) scaling(ctx context.Context) error {
	for _, n := range h.o.Scaling {
		key := fmt.Sprintf("scaling_%d", n)
		if n == 1 {
			if t, ok := h.rep.throughputs["orderflow_eos"]; ok {
				h.rep.setThroughput(key, t)
				continue
			}
		}
		h.settle()
		t, err := h.orderflow(ctx, key, processor.ExactlyOnce, n, "")
		if err != nil {
			return fmt.Errorf("%d instances: %w", n, err)
		}
		h.logf("orderflow exactly_once x%d: %.0f records/s (wall %v); %v", n, t.rate, t.wall.Round(time.Millisecond), t.cpu)
		h.rep.setThroughput(key, t)
	}
	return nil
}
