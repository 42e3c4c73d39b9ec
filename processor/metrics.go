package processor

import (
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/orderflow/orderflow/statestore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/plugin/kprom"
)

// MetricsNamespace prefixes every metric name of a processor.
const MetricsNamespace = "orderflow"

// metrics are a processor's Prometheus metrics, in a registry of its own
// (Gatherer). Counters are read from the committed Stats when scraped, so
// the per-record path pays nothing for them; histograms are observed once
// per committed batch (Processor.committed, commit.go).
type metrics struct {
	p   *Processor
	reg *prometheus.Registry

	batchRecords prometheus.Histogram
	commit       prometheus.Histogram
	endToEnd     *batchHistogram
	phases       [numPhases]prometheus.Observer // batch_phase_seconds, by phase
	fetchDelay   prometheus.Histogram
	corruptions  prometheus.Counter // the state store found corrupt and rebuilt (storehealth.go)
	// assignToProcess is the time from a partition's assignment to its
	// first fetch after the restore (rebalance.go).
	assignToProcess prometheus.Histogram
	lag             *lagCollector // lag.go

	store storeRef

	// The machine's every edge and reason: their counters are exported
	// from the start, at 0 until counted, so that rate() and increase()
	// see the first events of a series (a series that first appears at 5
	// shows no increase).
	edges   []move
	reasons []string
	timed   []string // the states declaring timers
}

func newMetrics(p *Processor) *metrics {
	m := &metrics{p: p, reg: prometheus.NewRegistry()}
	if p.cfg.Machine != nil {
		for _, e := range p.cfg.Machine.Edges() {
			m.edges = append(m.edges, move{e.From, e.To})
		}
		m.reasons = p.cfg.Machine.Reasons()
		m.timed = p.cfg.Machine.TimedStates()
	}
	m.batchRecords = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: MetricsNamespace, Name: "batch_records",
		Help:    "Input records per committed batch (one transaction, or one offset commit in at_least_once).",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: MetricsNamespace, Name: "commit_seconds",
		Help:    "Time to commit a batch: ending the Kafka transaction (exactly_once) or flushing and committing offsets (at_least_once), plus the state store write.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	m.endToEnd = newBatchHistogram(prometheus.HistogramOpts{
		Namespace: MetricsNamespace, Name: "end_to_end_latency_seconds",
		Help:    "From an input record's Kafka timestamp to the commit of the batch that processed it.",
		Buckets: latencyBuckets,
	})
	phases := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: MetricsNamespace, Name: "batch_phase_seconds",
		Help: "Time each batch spends in each phase: fill (processing its records and waiting for more until the commit interval ends it), " +
			"flush (until the brokers have its output records), end (ending the Kafka transaction, or committing the offsets in at_least_once) " +
			"and store (writing the state store).",
		Buckets: latencyBuckets,
	}, []string{"phase"})
	for ph, name := range phaseNames {
		m.phases[ph] = phases.WithLabelValues(name)
	}
	m.fetchDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: MetricsNamespace, Name: "fetch_delay_seconds",
		Help:    "From the Kafka timestamp of the first record of each partition's fetched records to when the processor takes them up.",
		Buckets: latencyBuckets,
	})
	m.corruptions = newCorruptionsCounter()
	m.assignToProcess = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: MetricsNamespace, Name: "assignment_to_processing_seconds",
		Help:    "Time from a partition's assignment to this instance until it is restored and fetched again (the pause a move costs the partition here).",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
	})
	m.lag = &lagCollector{p: p}
	m.reg.MustRegister(m.batchRecords, m.commit, m.endToEnd, phases, m.fetchDelay, m.corruptions, m.assignToProcess, m.lag, collector{m})
	return m
}

// latencyBuckets are the buckets of the latency histograms, in seconds:
// a millisecond apart up to 10 ms and no more than 5 ms apart up to 50 ms,
// where low-latency settings aim, then wider up to a minute.
var latencyBuckets = []float64{
	0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.010,
	0.0125, 0.015, 0.0175, 0.020, 0.025, 0.030, 0.035, 0.040, 0.045, 0.050,
	0.060, 0.075, 0.100, 0.125, 0.150, 0.200, 0.250, 0.300, 0.400, 0.500,
	0.750, 1, 1.5, 2, 3, 5, 10, 30, 60,
}

// A batch's phases (batch_phase_seconds).
const (
	phaseFill = iota
	phaseFlush
	phaseEnd
	phaseStore
	numPhases
)

var phaseNames = [numPhases]string{"fill", "flush", "end", "store"}

// phase observes the time since start in phase ph, and returns now.
func (m *metrics) phase(ph int, start time.Time) time.Time {
	now := time.Now()
	m.phases[ph].Observe(now.Sub(start).Seconds())
	return now
}

// fetched observes the fetch delay of a partition's fetched records, first
// the oldest.
func (m *metrics) fetched(first time.Time) {
	m.fetchDelay.Observe(max(time.Since(first), 0).Seconds())
}

// kafkaHooks returns franz-go's kprom plugin for one session's client (the
// consumer and transactional producer). It registers its collectors when
// the client is made and unregisters them when it is closed.
//
// Each client gets its own: kprom replaces its collectors in OnNewClient,
// while the client reports produced batches from goroutines that can
// outlive Close, so one kprom shared by a session and the next is a data
// race (seen under -race when sessions restart quickly).
func (m *metrics) kafkaHooks() *kprom.Metrics {
	return kprom.NewMetrics(MetricsNamespace, kprom.Subsystem("kafka"), kprom.Registry(m.reg),
		kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Records, kprom.Batches, kprom.UncompressedBytes))
}

// Gatherer returns the processor's metrics (names prefixed "orderflow_",
// the Kafka client's "orderflow_kafka_") for a Prometheus handler. The
// counters count committed work only: an aborted batch counts in
// orderflow_batches_total{result="aborted"} and nowhere else.
func (p *Processor) Gatherer() prometheus.Gatherer { return p.m.reg }

// committed observes the histograms of a committed batch. began is when
// the commit started.
func (m *metrics) committed(c *counts, began time.Time) {
	now := time.Now()
	m.commit.Observe(now.Sub(began).Seconds())
	m.batchRecords.Observe(float64(c.events))
	m.endToEnd.observeLatencies(now.UnixMilli(), c.eventTimes)
}

// batchHistogram is a histogram observed a batch of values at a time: a
// prometheus.Histogram takes several atomic operations per observation,
// contended between the threads, which adds up at one observation per input
// record. This one counts a batch into buckets of its own and adds them
// under a lock; it is collected as a constant histogram, with the same
// buckets ("le": a value equal to a bound counts in that bound's bucket).
type batchHistogram struct {
	desc   *prometheus.Desc
	bounds []float64 // upper bounds, ascending
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	count  uint64
	sum    float64
}

func newBatchHistogram(o prometheus.HistogramOpts) *batchHistogram {
	return &batchHistogram{
		desc:   prometheus.NewDesc(prometheus.BuildFQName(o.Namespace, o.Subsystem, o.Name), o.Help, nil, nil),
		bounds: o.Buckets,
		counts: make([]uint64, len(o.Buckets)+1),
	}
}

// observeLatencies observes, in seconds, the time from each of tsMs to
// nowMs (Unix milliseconds; 0 for a time after now).
func (h *batchHistogram) observeLatencies(nowMs int64, tsMs []int64) {
	if len(tsMs) == 0 {
		return
	}
	local := make([]uint64, len(h.counts))
	var sumMs int64
	for _, ts := range tsMs {
		d := max(nowMs-ts, 0)
		sumMs += d
		v := float64(d) / 1000
		// The first bound >= v, as prometheus finds buckets.
		i, _ := slices.BinarySearch(h.bounds, v)
		local[i]++
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, n := range local {
		h.counts[i] += n
	}
	h.count += uint64(len(tsMs))
	h.sum += float64(sumMs) / 1000
}

func (h *batchHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *batchHistogram) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	buckets := make(map[float64]uint64, len(h.bounds))
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		buckets[b] = cum
	}
	count, sum := h.count, h.sum
	h.mu.Unlock()
	ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets)
}

// storeRef is the open store, for readers outside the processing loop
// (queries, metrics): it is set once the store is open and cleared before
// it is closed; the lock keeps Close from running under a reader.
type storeRef struct {
	mu sync.RWMutex // guards s
	s  *statestore.Store
}

func (r *storeRef) set(s *statestore.Store) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = s
}

// with calls fn with the open store while holding it open; it returns
// false (without calling fn) when no store is open.
func (r *storeRef) with(fn func(*statestore.Store)) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.s == nil {
		return false
	}
	fn(r.s)
	return true
}

// collector reads the scrape-time metrics: totals from Stats, partitions and
// restore progress from the processor, Pebble's from the store.
type collector struct{ m *metrics }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(MetricsNamespace+"_"+name, help, labels, nil)
}

var (
	descEvents      = desc("events_consumed_total", "Input records processed in committed batches (including dead letters).")
	descTransitions = desc("transitions_total", "Accepted events, by the order's state before (from; \"none\" for a new order) and after (to).", "from", "to")
	descRejections  = desc("rejections_total", "Refused events, by reason.", "reason")
	descTimersFired = desc("timers_fired_total", "Fired timers, by the state declaring them.", "state")
	descTimersPend  = desc("timers_pending", "Open orders with a pending timer in this instance's restored partitions.")
	descOpenOrders  = desc("open_orders", "Open orders in this instance's restored partitions, by leaf state.", "state")
	descOpenOlder   = desc("open_orders_older", "Open orders in this instance's restored partitions that entered their leaf state (their last transition, in event time) more than older_than ago by the processor's clock, to the minute.", "state", "older_than")
	descDLQ         = desc("dlq_records_total", "Undecodable input records sent to the dead-letter topic.")
	descBatches     = desc("batches_total", "Batches ended, by result (committed or aborted).", "result")
	descRestores    = desc("restores_total", "Partition restores completed.")
	descRestoredAll = desc("restored_records_total", "Changelog records applied by completed restores.")
	descOwned       = desc("owned_partitions", "Input partitions assigned to this instance.")
	descRestoring   = desc("restoring_partitions", "Assigned input partitions still being restored (not yet consuming).")
	descStalled     = desc("stalled_partitions", "Owned input partitions whose last three or more batches all failed (aborted, or their session lost); the instance is not ready while any is.")
	descReady       = desc("ready", "1 when every thread has joined the group and every assigned partition is restored and consuming (as /readyz), else 0.")
	descRestored    = desc("restore_restored_records", "Changelog records applied so far by the current (or last) restore of an owned partition.", "partition")
	descRemaining   = desc("restore_remaining_records", "Changelog records (offsets) left to restore for an owned partition; 0 once restored.", "partition")

	descDisk        = desc("store_disk_bytes", "Bytes of the state store's live files (tables, WAL, manifest).")
	descMemTable    = desc("store_memtable_bytes", "Bytes of the state store's memtables.")
	descCompactions = desc("store_compactions_total", "Compactions the state store completed since the process started.")
	descCompacting  = desc("store_compactions_in_progress", "Compactions running in the state store.")
	descFlushes     = desc("store_flushes_total", "Memtable flushes the state store completed since the process started.")
	descFlushed     = desc("store_flushed_bytes_total", "Bytes of tables the state store's memtable flushes wrote.")
	descCompacted   = desc("store_compacted_bytes_total", "Bytes of tables the state store's compactions wrote.")
	descDebt        = desc("store_compaction_debt_bytes", "Estimated bytes the state store's compactions still have to rewrite.")
	descReadAmp     = desc("store_read_amplification", "Read amplification of the state store (L0 sublevels plus non-empty levels).")
	descStalls      = desc("store_write_stalls_total", "Times the state store delayed writes (a write stall).")
	descStallTime   = desc("store_write_stall_seconds_total", "Total duration of ended write stalls.")
	descPartitioner = desc("partitioner", "1 for the partitioner order queries use (--partitioner, else the one the input shows), with the one the input's committed records show (shown: none before any).", "partitioner", "shown")
	descPlaced      = desc("partitioner_records_total", "Keyed input records of committed batches by the partitioner that put them in their partition under the count the instance started with (murmur2, crc32, or neither); a record both would place counts for the one in use.", "partitioner")
	descMismatches  = desc("partitioner_mismatches_total", "Input records of committed batches that the partitioner in use (orderflow_partitioner) did not put in their partition.")

	descStandbys   = desc("standby_partitions", "Partitions this instance holds as standby copies, following their changelog (--standby-replicas).")
	descStandbyLag = desc("standby_lag_records", "Changelog offsets a standby copy was behind the changelog's last stable offset when last listed.", "partition")
	descPromotions = desc("standby_promotions_total", "Standby copies this instance came to own (a failover or a planned move), restoring only what the copy lacked.")

	descCacheHits   = desc("store_block_cache_hits_total", "Block cache hits of the state store.")
	descCacheMisses = desc("store_block_cache_misses_total", "Block cache misses of the state store.")

	allDescs = []*prometheus.Desc{
		descEvents, descTransitions, descRejections, descTimersFired, descTimersPend, descOpenOrders, descOpenOlder, descDLQ, descBatches, descRestores, descRestoredAll,
		descOwned, descRestoring, descStalled, descReady, descRestored, descRemaining,
		descDisk, descMemTable, descCompactions, descCompacting, descFlushes, descFlushed, descCompacted, descDebt, descReadAmp, descStalls, descStallTime,
		descCacheHits, descCacheMisses, descPartitioner, descPlaced, descMismatches,
		descStandbys, descStandbyLag, descPromotions,
	}
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	p := c.m.p
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	st := p.Stats()
	counter(descEvents, float64(st.Events))
	counter(descDLQ, float64(st.DLQ))
	counter(descBatches, float64(st.Batches), "committed")
	counter(descBatches, float64(st.Aborts), "aborted")
	counter(descRestores, float64(st.Restores))
	counter(descRestoredAll, float64(st.Restored))
	for reason, n := range st.Rejected {
		counter(descRejections, float64(n), reason)
	}
	for state, n := range st.TimersFired {
		counter(descTimersFired, float64(n), state)
	}
	for _, state := range c.m.timed {
		if _, ok := st.TimersFired[state]; !ok {
			counter(descTimersFired, 0, state)
		}
	}
	if p.routing != nil { // New sets it; tests may not
		placed, mismatched, shown := p.routing.snapshot()
		gauge(descPartitioner, 1, p.Partitioner().String(), shown.String())
		counter(descPlaced, float64(placed[partitioner.Murmur2]), partitioner.Murmur2.String())
		counter(descPlaced, float64(placed[partitioner.CRC32]), partitioner.CRC32.String())
		counter(descPlaced, float64(placed[partitioner.None]), "neither")
		counter(descMismatches, float64(mismatched))
	}
	for _, reason := range c.m.reasons {
		if _, ok := st.Rejected[reason]; !ok {
			counter(descRejections, 0, reason)
		}
	}
	moves := p.stats.movesSnapshot()
	if moves == nil { // maps.Clone of nil
		moves = map[move]int64{}
	}
	for _, mv := range c.m.edges {
		if _, ok := moves[mv]; !ok {
			moves[mv] = 0
		}
	}
	for mv, n := range moves {
		from := mv.from
		if from == "" {
			from = "none"
		}
		counter(descTransitions, float64(n), from, mv.to)
	}

	type progress struct {
		part                int32
		restored, remaining int64
		ready               bool
	}
	p.mu.Lock()
	parts := make([]progress, 0, len(p.mu.parts))
	for part, ps := range p.mu.parts {
		parts = append(parts, progress{part, ps.progress.Restored(), ps.progress.Remaining(), ps.ready})
	}
	p.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].part < parts[j].part })
	restoring := 0
	for _, pp := range parts {
		label := strconv.Itoa(int(pp.part))
		remaining := pp.remaining
		if pp.ready {
			remaining = 0
		} else {
			restoring++
		}
		gauge(descRestored, float64(pp.restored), label)
		gauge(descRemaining, float64(remaining), label)
	}
	gauge(descOwned, float64(len(parts)))
	gauge(descRestoring, float64(restoring))
	gauge(descStalled, float64(len(p.stalled())))
	ready := 0.0
	if p.Ready() {
		ready = 1
	}
	gauge(descReady, ready)

	now := p.clock()
	cutoffs := make([]int64, len(OpenOrderAges))
	for i, a := range OpenOrderAges {
		cutoffs[i] = now.Add(-a.Age).UnixMilli()
	}
	pending := int64(0)
	for _, sc := range p.census(cutoffs) {
		gauge(descOpenOrders, float64(sc.Orders), sc.State)
		for i, a := range OpenOrderAges {
			gauge(descOpenOlder, float64(sc.older[i]), sc.State, a.Label)
		}
		if sc.Timer {
			pending += sc.Orders
		}
	}
	gauge(descTimersPend, float64(pending))
	standby := p.Standbys()
	gauge(descStandbys, float64(len(standby)))
	var promotions int64
	if p.sb != nil {
		promotions = p.sb.promotions.Load()
		if t := p.sb.tailerNow(); t != nil {
			for _, part := range standby {
				if l, ok := t.Lag(part); ok && l.Records >= 0 {
					gauge(descStandbyLag, float64(l.Records), strconv.Itoa(int(part)))
				}
			}
		}
	}
	counter(descPromotions, float64(promotions))

	c.m.store.with(func(s *statestore.Store) {
		sm, err := s.Metrics()
		if err != nil {
			return
		}
		gauge(descDisk, float64(sm.DiskSpaceUsage))
		gauge(descMemTable, float64(sm.MemTableBytes))
		counter(descCompactions, float64(sm.Compactions))
		gauge(descCompacting, float64(sm.CompactionsInProgress))
		counter(descFlushes, float64(sm.Flushes))
		counter(descFlushed, float64(sm.FlushedBytes))
		counter(descCompacted, float64(sm.CompactedBytes))
		gauge(descDebt, float64(sm.CompactionDebtBytes))
		gauge(descReadAmp, float64(sm.ReadAmp))
		counter(descStalls, float64(sm.WriteStalls))
		counter(descStallTime, sm.WriteStallTime.Seconds())
		counter(descCacheHits, float64(sm.BlockCacheHits))
		counter(descCacheMisses, float64(sm.BlockCacheMisses))
	})
}
