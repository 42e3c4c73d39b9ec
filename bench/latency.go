package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
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
	mean              time.Duration
	max               time.Duration
	p99All, maxAll    time.Duration   // over the whole run, warm-up included
	cpu               *machine.CPUUse // from the warm-up's end to the last record produced
	batches           string          // orderflow's batches and commits, from its metrics
	clients           string          // what the measured program's clients sent (clientCounts)
	// breakdown is orderflow's histograms after the warm-up (nil for the
	// ceiling); gc the bench process's GC pauses after it.
	breakdown histograms
	gc        gcPauses
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

// latencyTarget is the program a latency measurement measures, running.
type latencyTarget struct {
	done    chan error    // its end
	ready   func() bool   // it owns every partition, restored
	batches func() string // its batches, from orderflow's metrics (nil for the ceiling)
	// metrics snapshots orderflow's histograms (nil for the ceiling).
	metrics func() histograms
	counts  *clientCounts
	finish  func() // after it ended
}

// startLatencyTarget starts target ("ceiling" or "orderflow") with setting
// s under the app id name, reading topics.Events; it runs until ctx is
// done.
func (h *harness) startLatencyTarget(ctx context.Context, name, target string, s curveSetting, topics processor.Topics) (*latencyTarget, error) {
	t := &latencyTarget{done: make(chan error, 1), counts: &clientCounts{}}
	hooks := []kgo.Opt{kgo.WithHooks(t.counts)}
	if target == "ceiling" {
		c := h.ceilingConfig(h.name(name), topics, s.Guarantee == processor.ExactlyOnce)
		c.sizes, c.extra = sizesFromHeader, hooks
		c.commitInterval, c.endIdle = s.CommitInterval, s.EndIdle
		go func() { t.done <- runCeiling(ctx, c) }()
		t.ready = func() bool { return c.assigned.Load() == h.o.partitions }
		t.finish = func() { h.noteAborts(name, c) }
		return t, nil
	}
	cfg := h.processorConfig(h.name(name), "i0", topics, s.Guarantee)
	cfg.CommitInterval, cfg.EndIdleBatches = s.CommitInterval, s.EndIdle
	cfg.KafkaOpts = hooks
	p, err := processor.New(cfg)
	if err != nil {
		return nil, err
	}
	go func() { t.done <- p.Run(ctx) }()
	t.ready = func() bool { return p.Ready() && len(p.Assigned()) == int(h.o.partitions) }
	t.batches = func() string { return describeBatches(p.Gatherer()) }
	t.metrics = func() histograms { return gatherHistograms(p.Gatherer()) }
	t.finish = func() { os.RemoveAll(filepath.Dir(cfg.StateDir)) }
	return t, nil
}

// outcomes collects the latency of each outcome: from its timestamp, which
// is its input record's (orderflow copies it, as Kafka Streams does; the
// ceiling too), in milliseconds, to when a read_committed consumer sees it.
type outcomes struct {
	start, warmEnd    atomic.Int64 // unix ms; until producing starts, never
	received, foreign atomic.Int64 // foreign: outcomes whose timestamp is no input's
	mu                sync.Mutex
	lats, early       []time.Duration // after the warm-up, and in it
	// onWarm, if set, runs when the warm-up ends (produceAtRate).
	onWarm func()
}

func newOutcomes() *outcomes {
	o := &outcomes{}
	o.start.Store(math.MaxInt64)
	o.warmEnd.Store(math.MaxInt64)
	return o
}

func (o *outcomes) seen(at, now time.Time) {
	o.received.Add(1)
	if at.UnixMilli() < o.start.Load() || at.After(now) {
		o.foreign.Add(1)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if at.UnixMilli() >= o.warmEnd.Load() {
		o.lats = append(o.lats, now.Sub(at))
	} else {
		o.early = append(o.early, now.Sub(at))
	}
}

// consume reads the outcome topics, read_committed from their start,
// giving each record to seen with the time its fetch arrived, until ctx is
// done.
func (h *harness) consume(ctx context.Context, topics processor.Topics, seen func(r *kgo.Record, now time.Time)) (<-chan error, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(h.o.Brokers...),
		kgo.ConsumeTopics(topics.Status, topics.Rejections, topics.DLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(50*time.Millisecond), // the topics are new
	)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			if ctx.Err() != nil {
				done <- nil
				return
			}
			var ferr error
			fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("%s/%d: %w", t, p, err) })
			if ferr != nil {
				done <- ferr
				return
			}
			fs.EachRecord(func(r *kgo.Record) { seen(r, now) })
		}
	}()
	return done, nil
}

// latencyOf runs one latency measurement of target ("ceiling" or
// "orderflow") with setting s under the app id, group and topic names
// name, leaving the first warm of it out of the percentiles.
func (h *harness) latencyOf(ctx context.Context, name, target string, s curveSetting, in *latencyInput, rate float64, warm time.Duration) (latencyResult, error) {
	app := h.name(name)
	topics := outputTopics(app, app+".events")
	h.deleteAtEnd(topics.Events)
	if err := h.createTopic(ctx, topics.Events, nil); err != nil {
		return latencyResult{}, err
	}
	if err := h.createOutputs(ctx, topics, processor.ChangelogTopic(app)); err != nil {
		return latencyResult{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t, err := h.startLatencyTarget(rctx, name, target, s, topics)
	if err != nil {
		return latencyResult{}, err
	}
	defer t.finish()
	o := newOutcomes()
	var atWarm histograms
	var gcWarm gcPauses
	o.onWarm = func() {
		gcWarm = readGCPauses()
		if t.metrics != nil {
			atWarm = t.metrics()
		}
	}
	consumed, err := h.consume(rctx, topics, func(r *kgo.Record, now time.Time) { o.seen(r.Timestamp, now) })
	if err != nil {
		return latencyResult{}, err
	}
	for !t.ready() {
		select {
		case err := <-t.done:
			return latencyResult{}, fmt.Errorf("stopped before it was ready: %v", err)
		case <-ctx.Done():
			return latencyResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	r, err := h.produceAtRate(ctx, topics.Events, in, rate, warm, target == "ceiling", o, t.done)
	if err != nil {
		return latencyResult{}, err
	}
	// Wait for every outcome.
	for deadline := time.Now().Add(time.Minute); o.received.Load() < int64(in.n); {
		select {
		case err := <-consumed:
			return latencyResult{}, fmt.Errorf("outcome consumer: %v", err)
		case err := <-t.done:
			return latencyResult{}, fmt.Errorf("stopped before every outcome arrived: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return latencyResult{}, fmt.Errorf("%d of %d outcomes arrived", o.received.Load(), in.n)
		}
	}
	cancel()
	if err := <-t.done; err != nil {
		return latencyResult{}, err
	}
	r.gc = readGCPauses().sub(gcWarm)
	if t.batches != nil {
		r.batches = t.batches()
	}
	if t.metrics != nil && atWarm != nil {
		r.breakdown = t.metrics().sub(atWarm)
	}
	r.clients = t.counts.String()
	return r, o.percentiles(&r)
}

// produceAtRate produces in's records to topic at rate, each stamped with
// its produce time, and returns the rate reached and the CPU used from
// the warm-up's end to the last record produced. withSizes adds each
// record's out sizes as a header, for the ceiling.
func (h *harness) produceAtRate(ctx context.Context, topic string, in *latencyInput, rate float64, warm time.Duration,
	withSizes bool, o *outcomes, stopped <-chan error) (latencyResult, error) {
	lp, err := h.newLoadProducer(topic)
	if err != nil {
		return latencyResult{}, err
	}
	defer lp.cl.Close()
	start := time.Now()
	o.start.Store(start.UnixMilli())
	o.warmEnd.Store(start.Add(warm).UnixMilli())
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var warmCPU machine.Snapshot
	sent, warmSent := 0, -1
	for sent < in.n {
		select {
		case <-ctx.Done():
			return latencyResult{}, ctx.Err()
		case err := <-stopped:
			return latencyResult{}, fmt.Errorf("stopped while producing: %v", err)
		case <-tick.C:
		}
		if warmSent < 0 && time.Since(start) >= warm {
			warmCPU, warmSent = h.cpu.Snapshot(), sent
			if o.onWarm != nil {
				o.onWarm()
			}
		}
		now := time.Now()
		due := min(in.n, int(rate*now.Sub(start).Seconds()))
		in.produce(ctx, lp.cl, sent, due, now, withSizes, lp.produced)
		sent = due
	}
	r := latencyResult{rate: float64(in.n) / time.Since(start).Seconds(), produced: in.n}
	if warmSent >= 0 && sent > warmSent {
		r.cpu = machine.Use(warmCPU, h.cpu.Snapshot(), int64(sent-warmSent))
	}
	if err := lp.flush(ctx); err != nil {
		return latencyResult{}, err
	}
	return r, nil
}

// loadProducer is the load generator's producer, which keeps the first
// error of the records it produced.
type loadProducer struct {
	cl   *kgo.Client
	perr atomic.Pointer[error]
}

// newLoadProducer returns a load producer of topic; opts are added to its
// client's options.
func (h *harness) newLoadProducer(topic string, opts ...kgo.Opt) (*loadProducer, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(h.o.Brokers...),
		kgo.DefaultProduceTopic(topic),
		// As the Java producer's default since Kafka 4.0 (KIP-1030): with
		// no linger, records produced every millisecond go out in small
		// batches, and the broker's per-batch work dominates, for the
		// ceiling and orderflow alike. The wait is in the latency
		// measured: a record's timestamp is taken before it is produced.
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(1_000_000),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &loadProducer{cl: cl}, nil
}

// produced is the promise of each record produced.
func (p *loadProducer) produced(_ *kgo.Record, err error) {
	if err != nil {
		p.perr.CompareAndSwap(nil, &err)
	}
}

// flush waits until every record is produced and returns the first error.
func (p *loadProducer) flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	if e := p.perr.Load(); e != nil {
		return *e
	}
	return nil
}

// produce produces records from up to due, allocated together and stamped
// with one clock reading, now: they go to Produce within microseconds of
// it, and Kafka keeps milliseconds. The load generator shares the machine
// with what it measures, so it costs as little per record as it can.
func (in *latencyInput) produce(ctx context.Context, prod *kgo.Client, from, due int, now time.Time, withSizes bool, onProduced func(*kgo.Record, error)) {
	recs := make([]kgo.Record, due-from)
	for i := range recs {
		k, v, sz := in.record(from + i)
		r := &recs[i]
		r.Key, r.Value, r.Timestamp = k, v, now
		if withSizes {
			r.Headers = []kgo.RecordHeader{{Key: sizesHeader, Value: appendSizes(in.alloc(9)[:0], sz)}}
		}
		prod.Produce(ctx, r, onProduced)
	}
}

// percentiles sets r's percentiles from the outcomes seen.
func (o *outcomes) percentiles(r *latencyResult) error {
	if f := o.foreign.Load(); f > 0 {
		return fmt.Errorf("%d of %d outcomes do not carry their input's timestamp", f, o.received.Load())
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.lats) == 0 {
		return fmt.Errorf("no samples after the warm-up")
	}
	all := slices.Concat(o.early, o.lats)
	slices.Sort(o.lats)
	slices.Sort(all)
	r.samples = len(o.lats)
	var sum time.Duration
	for _, d := range o.lats {
		sum += d
	}
	r.mean = sum / time.Duration(len(o.lats))
	r.p50, r.p99, r.p999, r.max = quantile(o.lats, 0.50), quantile(o.lats, 0.99), quantile(o.lats, 0.999), o.lats[len(o.lats)-1]
	r.p99All, r.maxAll = quantile(all, 0.99), all[len(all)-1]
	return nil
}

// quantile is the q-quantile of sorted, which is not empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
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
