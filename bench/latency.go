package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/processor"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// latencyResult is one latency measurement: from an input record's
// timestamp (set when it is produced) to the moment its outcome (status,
// rejection or dead-letter record) reaches a read_committed consumer.
type latencyResult struct {
	rate              float64 // produced records/s
	produced, samples int
	p50, p99, p999    time.Duration
	max               time.Duration
	p99All, maxAll    time.Duration   // over the whole run, warm-up included
	cpu               *machine.CPUUse // from the warm-up's end to the last record produced
	batches           string          // orderflow's batches and commits, from its metrics
	clients           string          // what the measured program's clients sent (clientCounts)
}

// latencyInput is the workload produced at a fixed rate: n records, the
// encoded workload over and over if n is longer, each pass with order ids
// of its own (record). Make one with newLatencyInput.
type latencyInput struct {
	enc *encoded
	n   int
	// letters holds, for each workload record, where a later pass writes
	// its letter: the key's offset first, then the value's offsets,
	// -1-terminated, from letterAt[j]. Found once, so that producing at
	// the latency load costs the bench no search per record.
	letters  []int32
	letterAt []int32
	slab     []byte // the rest of the buffer record copies into
}

// maxLatencyPasses bounds the passes over the workload: pass p > 0 puts
// the letter 'a'+p-1 into every id.
const maxLatencyPasses = 27

// latencySlab is the size of the buffers later passes' records are copied
// into, many records to a buffer.
const latencySlab = 64 << 10

// newLatencyInput returns n records of enc's workload (record). Order ids
// are "o-<seed>-<n>", "ghost-<seed>-<n>" and "bad-<n>": a later pass
// replaces the character after the key's first '-' with a letter, in the
// key and wherever the key occurs in the value (the event's order_id).
// Keys without such a character (DLQ keys only) stay as they are.
func newLatencyInput(enc *encoded, n int) *latencyInput {
	in := &latencyInput{enc: enc, n: n, letterAt: make([]int32, enc.len())}
	for j := range enc.len() {
		in.letterAt[j] = int32(len(in.letters))
		key, value := enc.keys.at(j), enc.values.at(j)
		if at := bytes.IndexByte(key, '-') + 1; at > 0 && at < len(key) {
			in.letters = append(in.letters, int32(at))
			for off := 0; ; {
				k := bytes.Index(value[off:], key)
				if k < 0 {
					break
				}
				in.letters = append(in.letters, int32(off+k+at))
				off += k + len(key)
			}
		}
		in.letters = append(in.letters, -1)
	}
	return in
}

// record returns input record i: pass i/len(workload) of workload record
// i%len(workload). The first pass is the workload as generated and shares
// its memory; a later pass is a copy with the pass letter written in (see
// newLatencyInput). The length stays, so the Avro encoding stays valid and
// every output has the size the workload's had (sizes): a later pass is
// the same orders' same lifecycles under new ids, with the same outcomes.
// Not safe for concurrent use.
func (in *latencyInput) record(i int) (key, value []byte, sizes outSizes) {
	j, pass := i%in.enc.len(), i/in.enc.len()
	key, value, sizes = in.enc.keys.at(j), in.enc.values.at(j), in.enc.sizes[j]
	at := in.letters[in.letterAt[j]:]
	if pass == 0 || at[0] < 0 {
		return key, value, sizes
	}
	buf := in.alloc(len(key) + len(value))
	nk, nv := buf[:len(key):len(key)], buf[len(key):]
	copy(nk, key)
	copy(nv, value)
	letter := 'a' + byte(pass-1)
	nk[at[0]] = letter
	for _, off := range at[1:] {
		if off < 0 {
			break
		}
		nv[off] = letter
	}
	return nk, nv, sizes
}

// alloc returns n bytes of the current slab, starting a new one when it
// has too little left: one allocation for many records. A slab lives
// until the producer is done with every record in it.
func (in *latencyInput) alloc(n int) []byte {
	if len(in.slab) < n {
		in.slab = make([]byte, max(n, latencySlab))
	}
	b := in.slab[:n:n]
	in.slab = in.slab[n:]
	return b
}

func (h *harness) latency(ctx context.Context) error {
	rate := h.o.LatencyRate
	if rate == 0 {
		eos, ok := h.rep.throughputs["orderflow_eos"]
		if !ok {
			return fmt.Errorf("needs the exactly_once measurement (its rate sets the load)")
		}
		rate = eos.rate / 2
	}
	if h.o.Tiny {
		// Keep the tiny run small: slow down to the rate that produces the
		// tiny workload in three warm-ups (twice over in the tiny
		// LatencyDuration, so a second pass with new ids runs too). The
		// tiny mode checks that the harness works, not the figures.
		if slow := float64(h.enc.len()) / (3 * h.o.LatencyWarmup.Seconds()); rate > slow {
			rate = slow
		}
	}
	// The preloaded workload again (the latency runs have their own input
	// topics and app ids), as much of it as LatencyDuration takes: more
	// than once, with new order ids in each pass, if it is shorter.
	n := int(rate * h.o.LatencyDuration.Seconds())
	if most := maxLatencyPasses * h.enc.len(); n > most {
		h.logf("latency: %d records at %.0f/s would take %d passes over the workload; producing %d passes (%d records)", n, rate, n/h.enc.len()+1, maxLatencyPasses, most)
		n = most
	}
	if time.Duration(float64(n)/rate*float64(time.Second)) <= h.o.LatencyWarmup {
		return fmt.Errorf("%d records at %.0f/s last no longer than the warm-up %v", n, rate, h.o.LatencyWarmup)
	}
	in := newLatencyInput(h.enc, n)
	what := "half the exactly_once rate; slower in tiny mode"
	if h.o.LatencyRate != 0 {
		what = "-latency-rate"
	}
	h.logf("latency: %d records at %.0f records/s (%s)", in.n, rate, what)
	for _, target := range []string{"ceiling", "orderflow"} {
		h.settle()
		r, err := h.latencyOf(ctx, "latency-"+target, target, in, rate, h.o.LatencyWarmup)
		if err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
		h.logf("latency %s at %.0f/s: p50 %v p99 %v p999 %v max %v (%d samples); %s", target, r.rate,
			r.p50.Round(time.Millisecond/10), r.p99.Round(time.Millisecond/10), r.p999.Round(time.Millisecond/10), r.max.Round(time.Millisecond), r.samples, r.cpu)
		if r.batches != "" {
			h.logf("latency %s: %s", target, r.batches)
		}
		h.logf("latency %s clients: %s", target, r.clients)
		h.rep.setLatency(target, r, h.o.LatencyRate != 0)
	}
	return nil
}

// latencyOf runs one latency measurement of target ("ceiling" or
// "orderflow") under the app id, group and topic names name, leaving the
// first warm of it out of the percentiles.
func (h *harness) latencyOf(ctx context.Context, name, target string, in *latencyInput, rate float64, warm time.Duration) (latencyResult, error) {
	app := h.name(name)
	topics := processor.Topics{Events: app + ".events", Status: app + ".status", Rejections: app + ".rejections", DLQ: app + ".dlq"}
	changelog := processor.ChangelogTopic(app)
	for _, t := range []string{topics.Events, topics.Status, topics.Rejections, topics.DLQ} {
		if err := h.createTopic(ctx, t, nil); err != nil {
			return latencyResult{}, err
		}
	}
	compact := "compact"
	if err := h.createTopic(ctx, changelog, map[string]*string{"cleanup.policy": &compact}); err != nil {
		return latencyResult{}, err
	}
	defer h.deleteAtEnd(topics.Events, topics.Status, topics.Rejections, topics.DLQ, changelog)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	var (
		ready   func() bool
		batches func() string
	)
	counts := &clientCounts{}
	opts := append(slices.Clip(h.o.ClientOpts), kgo.WithHooks(counts))
	switch target {
	case "ceiling":
		var committed, aborted atomic.Int64
		var assigned atomic.Int32
		defer func() {
			if n := aborted.Load(); n > 0 {
				h.rep.Checks = append(h.rep.Checks, fmt.Sprintf("%s: %d aborted transactions", name, n))
				h.logf("%s: %d aborted transactions", name, n)
			}
		}()
		go func() {
			done <- runCeiling(rctx, ceilingConfig{
				brokers: h.o.Brokers, input: topics.Events, group: app, transactional: true,
				commitInterval: h.o.CommitInterval, maxBatch: h.o.MaxBatchRecords, sessions: h.o.Threads,
				topics: topics, changelog: changelog, sizes: sizesFromHeader,
				payload: h.payload(), extra: opts, committed: &committed, aborted: &aborted, assigned: &assigned,
			})
		}()
		ready = func() bool { return assigned.Load() == h.o.Partitions }
	default:
		cfg := processor.DefaultConfig()
		cfg.Brokers = h.o.Brokers
		cfg.AppID = app
		cfg.InstanceID = "i0"
		cfg.Topics = topics
		cfg.CommitInterval = h.o.CommitInterval
		cfg.MaxBatchRecords = h.o.MaxBatchRecords
		cfg.Threads = h.o.Threads
		cfg.Partitions = h.o.Partitions
		cfg.StateDir = filepath.Join(h.work, "latency")
		cfg.Logger = h.plog.With("run", "latency")
		cfg.KafkaOpts = opts
		defer os.RemoveAll(cfg.StateDir)
		p, err := processor.New(cfg)
		if err != nil {
			return latencyResult{}, err
		}
		go func() { done <- p.Run(rctx) }()
		ready = func() bool { return p.Ready() && len(p.Assigned()) == int(h.o.Partitions) }
		batches = func() string { return describeBatches(p.Gatherer()) }
	}
	// Every outcome carries its input record's timestamp (orderflow copies
	// it, as Kafka Streams does; the ceiling too), in milliseconds.
	var (
		startMs  atomic.Int64 // unix ms; set when producing starts
		warmEnd  atomic.Int64 // unix ms
		mu       sync.Mutex
		lats     []time.Duration
		early    []time.Duration // the warm-up's
		received atomic.Int64
		foreign  atomic.Int64 // outcomes whose timestamp is no input's
	)
	startMs.Store(1<<63 - 1)
	warmEnd.Store(1<<63 - 1)
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(h.o.Brokers...),
		kgo.ConsumeTopics(topics.Status, topics.Rejections, topics.DLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(50*time.Millisecond), // the topics are new
	)
	if err != nil {
		return latencyResult{}, err
	}
	defer cons.Close()
	consDone := make(chan error, 1)
	go func() {
		consDone <- consumeOutcomes(rctx, cons, func(at time.Time, seen time.Time) {
			received.Add(1)
			if at.UnixMilli() < startMs.Load() || at.After(seen) {
				foreign.Add(1)
				return
			}
			mu.Lock()
			if at.UnixMilli() >= warmEnd.Load() {
				lats = append(lats, seen.Sub(at))
			} else {
				early = append(early, seen.Sub(at))
			}
			mu.Unlock()
		})
	}()

	for !ready() {
		select {
		case err := <-done:
			return latencyResult{}, fmt.Errorf("stopped before it was ready: %v", err)
		case <-ctx.Done():
			return latencyResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}

	prod, err := kgo.NewClient(
		kgo.SeedBrokers(h.o.Brokers...),
		kgo.DefaultProduceTopic(topics.Events),
		// As the Java producer's default since Kafka 4.0 (KIP-1030). With
		// no linger, records produced every millisecond went out in
		// batches of a dozen per partition, and the broker's per-batch
		// work took over a core at half load, for the ceiling and
		// orderflow alike. The wait is in the latency measured: a
		// record's timestamp is taken before it is produced.
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(1_000_000),
	)
	if err != nil {
		return latencyResult{}, err
	}
	defer prod.Close()
	var perr atomic.Pointer[error]
	onProduced := func(_ *kgo.Record, err error) {
		if err != nil {
			perr.CompareAndSwap(nil, &err)
		}
	}
	if target == "orderflow" && h.o.Profile != "" {
		prof, err := startProfile(h.o.Profile, "latency-")
		if err != nil {
			return latencyResult{}, err
		}
		defer prof.stop() // the CPU profile covers the whole run
	}
	start := time.Now()
	startMs.Store(start.UnixMilli())
	warmEnd.Store(start.Add(warm).UnixMilli())
	tick := time.NewTicker(time.Millisecond)
	sent := 0
	var (
		warmCPU  machine.Snapshot
		warmSent = -1
	)
	for sent < in.n {
		select {
		case <-ctx.Done():
			tick.Stop()
			return latencyResult{}, ctx.Err()
		case err := <-done:
			tick.Stop()
			return latencyResult{}, fmt.Errorf("stopped while producing: %v", err)
		case <-tick.C:
		}
		if warmSent < 0 && time.Since(start) >= warm {
			warmCPU, warmSent = h.cpu.Snapshot(), sent
		}
		// The records due since the last tick, allocated together and
		// stamped with one clock reading: they go to Produce within
		// microseconds of it, and Kafka keeps milliseconds. The load
		// generator shares the machine with what it measures, so it
		// costs as little per record as it can.
		now := time.Now()
		due := min(in.n, int(rate*now.Sub(start).Seconds()))
		recs := make([]kgo.Record, due-sent)
		var hdrs []kgo.RecordHeader
		if target == "ceiling" {
			hdrs = make([]kgo.RecordHeader, len(recs))
		}
		for i := range recs {
			k, v, sz := in.record(sent + i)
			r := &recs[i]
			r.Key, r.Value, r.Timestamp = k, v, now
			if hdrs != nil {
				hdrs[i] = kgo.RecordHeader{Key: sizesHeader, Value: appendSizes(in.alloc(9)[:0], sz)}
				r.Headers = hdrs[i : i+1 : i+1]
			}
			prod.Produce(ctx, r, onProduced)
		}
		sent = due
	}
	tick.Stop()
	produceTime := time.Since(start)
	var cpu *machine.CPUUse
	if warmSent >= 0 && sent > warmSent {
		cpu = machine.Use(warmCPU, h.cpu.Snapshot(), int64(sent-warmSent))
	}
	if err := prod.Flush(ctx); err != nil {
		return latencyResult{}, err
	}
	if p := perr.Load(); p != nil {
		return latencyResult{}, *p
	}
	// Wait for every outcome.
	deadline := time.Now().Add(time.Minute)
	for received.Load() < int64(in.n) {
		select {
		case err := <-consDone:
			return latencyResult{}, fmt.Errorf("outcome consumer: %v", err)
		case err := <-done:
			return latencyResult{}, fmt.Errorf("stopped before every outcome arrived: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return latencyResult{}, fmt.Errorf("%d of %d outcomes arrived", received.Load(), in.n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		return latencyResult{}, err
	}
	if f := foreign.Load(); f > 0 {
		return latencyResult{}, fmt.Errorf("%d of %d outcomes do not carry their input's timestamp", f, received.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lats) == 0 {
		return latencyResult{}, fmt.Errorf("no samples after the warm-up")
	}
	var bs string
	if batches != nil {
		bs = batches()
	}
	all := slices.Concat(early, lats)
	slices.Sort(lats)
	slices.Sort(all)
	return latencyResult{
		rate: float64(in.n) / produceTime.Seconds(), produced: in.n, samples: len(lats),
		p50: quantile(lats, 0.50), p99: quantile(lats, 0.99), p999: quantile(lats, 0.999), max: lats[len(lats)-1],
		p99All: quantile(all, 0.99), maxAll: all[len(all)-1],
		cpu: cpu, batches: bs, clients: counts.String(),
	}, nil
}

// quantile is the q-quantile of sorted, which is not empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// consumeOutcomes reads the outcome topics and reports, for each outcome,
// its timestamp (its input's) and when it arrived.
func consumeOutcomes(ctx context.Context, cl *kgo.Client, seen func(at, now time.Time)) error {
	for {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("%s/%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) { seen(r.Timestamp, now) })
	}
}

// describeBatches summarises a processor's committed batches from its
// metrics: how many, their mean size and the mean time to commit one.
func describeBatches(g prometheus.Gatherer) string {
	mfs, err := g.Gather()
	if err != nil {
		return ""
	}
	hist := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetHistogram() != nil {
			hist[mf.GetName()] = mf.GetMetric()[0].GetHistogram()
		}
	}
	recs, commit := hist["orderflow_batch_records"], hist["orderflow_commit_seconds"]
	if recs.GetSampleCount() == 0 || commit.GetSampleCount() == 0 {
		return ""
	}
	return fmt.Sprintf("%d committed batches of %.0f records on average, %.1f ms on average to commit one (whole run, warm-up included)",
		recs.GetSampleCount(), recs.GetSampleSum()/float64(recs.GetSampleCount()),
		1000*commit.GetSampleSum()/float64(commit.GetSampleCount()))
}
