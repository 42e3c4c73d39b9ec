package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/statestore"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers on dead-letter records (and, for at_least_once, the source offset
// on changelog records).
const (
	HeaderError           = "orderflow.error"
	HeaderSourceTopic     = "orderflow.source.topic"
	HeaderSourcePartition = "orderflow.source.partition"
	HeaderSourceOffset    = "orderflow.source.offset"
)

// ErrFatal is matched by errors that end Run because retrying cannot help
// (another instance uses this instance's transactional id, the store failed,
// a partition could not be restored).
var ErrFatal = errors.New("fatal")

// Processor is one orderflow instance. Make it with New, run it with Run.
type Processor struct {
	cfg        Config
	changelog  string
	codec      *avro.Codec // input events and output records
	stateCodec *avro.Codec // changelog values: always single-object
	log        *slog.Logger
	klog       kgoLogger // franz-go's log, rate-limited, of every client
	stats      stats
	m          *metrics // Prometheus metrics and the store for readers (metrics.go)

	leaves   []string // the machine's leaves, which Outcome.FromLeaf and ToLeaf index
	timers   bool     // the machine has timers (Machine.HasTimers)
	terminal []bool   // by leaf index

	store   *statestore.Store // open while Run runs
	adm     *kadm.Client      // admin client, while Run runs
	admCl   *kgo.Client       // adm's client
	layout  *layout           // the input's partition count, while Run runs (layout.go)
	routing *routing          // how producers partition the input (routing.go)
	sb      *standbys         // standby copies; nil without Config.StandbyReplicas (standby.go)

	// commitMu orders the store writes of committed batches before
	// restores (commit.go). Threads read-hold it together: they own
	// different partitions.
	commitMu sync.RWMutex

	mu struct {
		sync.Mutex
		parts   map[int32]*partition // owned input partitions, of every thread
		running int                  // threads with a client
		// joined are the threads whose client has completed its first
		// group assignment (possibly of no partitions).
		joined map[int]bool
		// failures counts each input partition's failed batches in a
		// row (stall.go).
		failures map[int32]int
	}
	restores sync.WaitGroup
	// restoreSlots bounds the restores running at once
	// (Config.RestoreConcurrency).
	restoreSlots chan struct{}
	fatal        chan error

	// rebalances counts assignments and revocations: a thread drops its
	// warm states (the last committed batch's overlay) when it moves.
	rebalances atomic.Uint64
}

// partition is an owned input partition.
type partition struct {
	thread   int          // the thread (session) that owns it
	ready    bool         // restored and resumed (guarded by Processor.mu)
	known    *knownOrders // set before ready; then used by the owning thread only
	census   *census      // set before ready; then kept by the owning thread's commits
	cancel   context.CancelFunc
	done     chan struct{}
	progress statestore.Progress
	assigned time.Time // when the thread was assigned it
}

// New checks cfg and returns a processor. It connects to nothing.
func New(cfg Config) (*Processor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Processor{
		cfg:       cfg,
		changelog: ChangelogTopic(cfg.AppID),
		log:       cfg.Logger.With("instance", cfg.InstanceID),
		fatal:     make(chan error, 1),

		restoreSlots: make(chan struct{}, cfg.RestoreConcurrency),
	}
	p.klog = newKgoLogger(p.log)
	var err error
	if p.stateCodec, err = avro.NewCodec(); err != nil {
		return nil, err
	}
	p.codec = p.stateCodec
	if len(cfg.WriterSchemas) > 0 {
		if p.codec, err = avro.NewCodec(avro.WithWriterSchemas(cfg.WriterSchemas...)); err != nil {
			return nil, fmt.Errorf("%w: Config.WriterSchemas: %w", ErrConfig, err)
		}
	}
	p.leaves = cfg.Machine.Leaves()
	p.timers = cfg.Machine.HasTimers()
	p.terminal = make([]bool, len(p.leaves))
	for i, l := range p.leaves {
		p.terminal[i] = cfg.Machine.IsTerminal(l)
	}
	p.mu.parts = make(map[int32]*partition)
	p.mu.joined = make(map[int]bool)
	p.mu.failures = make(map[int32]int)
	p.routing = newRouting(cfg.Partitioner)
	if cfg.StandbyReplicas > 0 {
		p.sb = newStandbys(p)
	}
	p.m = newMetrics(p)
	return p, nil
}

// Stats returns the running totals of committed work.
func (p *Processor) Stats() Stats { return p.stats.snapshot() }

// Ready reports whether every thread has joined the group and every
// partition assigned to the instance is restored and consuming: false
// before each thread's first assignment, true for an instance assigned no
// partitions (more instances than partitions), as a Kafka Streams
// instance is RUNNING without tasks.
func (p *Processor) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.running < p.cfg.Threads || len(p.mu.joined) < p.cfg.Threads {
		return false
	}
	for _, ps := range p.mu.parts {
		if !ps.ready {
			return false
		}
	}
	return len(p.stalledLocked()) == 0
}

// Assigned returns the input partitions this instance owns now.
func (p *Processor) Assigned() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int32, 0, len(p.mu.parts))
	for part := range p.mu.parts {
		out = append(out, part)
	}
	return out
}

func (p *Processor) connOpts() []kgo.Opt {
	return p.connOptsAs(p.cfg.AppID + "-" + p.cfg.InstanceID)
}

// connOptsAs is connOpts with the client id clientID.
func (p *Processor) connOptsAs(clientID string) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(p.cfg.Brokers...),
		kgo.ClientID(clientID),
		kgo.WithLogger(p.klog),
	}
	return append(opts, p.cfg.KafkaOpts...)
}

// run is Run on one state store, opened at its start and closed at its end.
func (p *Processor) run(ctx context.Context) (err error) {
	so := statestore.Options{
		Dir:      p.cfg.StateDir,
		ClosedAt: p.closedAt,
		Logger:   p.log,
	}
	if p.cfg.Machine.HasTimers() {
		so.DueAt = p.dueAt
	}
	store, err := statestore.Open(so)
	if err != nil {
		return fmt.Errorf("opening the state store in %s: %w", p.cfg.StateDir, err)
	}
	p.store = store
	p.m.store.set(store)
	defer func() {
		p.m.store.set(nil) // waits for queries and scrapes using the store
		p.closeStore(store, &err)
	}()

	// kadm answers ListTopics from the client's metadata cache: keep it
	// short-lived so EnsureTopics sees the topics it creates at once, and
	// checkLayout a change of the input's partition count.
	admCl, err := kgo.NewClient(append(p.connOpts(), kgo.MetadataMinAge(adminMetadataAge))...)
	if err != nil {
		return fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer admCl.Close()
	p.adm, p.admCl = kadm.NewClient(admCl), admCl
	p.m.lag.adm.Store(p.adm)
	defer p.m.lag.adm.Store(nil)
	if err := p.prepareTopics(ctx); err != nil { // changelog.go
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if p.cfg.ReseedChangelog {
		p.log.Info("reseed done")
		return nil
	}
	if _, err := readRecordLimits(ctx, p.adm, p.outputTopics()); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	td, err := p.adm.ListTopics(ctx, p.cfg.Topics.Events)
	if err == nil {
		err = td.Error()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("reading the partitions of %s: %w", p.cfg.Topics.Events, err)
	}
	p.layout = newLayout(p.cfg.Topics.Events, len(td[p.cfg.Topics.Events].Partitions))
	if p.cfg.SchemaRegistryURL != "" {
		p.codec, err = NewRegistryCodec(ctx, p.cfg.SchemaRegistryURL, p.cfg.SchemaRegistry, avro.Topics{
			Events: p.cfg.Topics.Events, Status: p.cfg.Topics.Status, Rejections: p.cfg.Topics.Rejections,
		}, avro.WithWriterSchemas(p.cfg.WriterSchemas...))
		if err != nil {
			return err
		}
	}

	p.log.Info("starting", "guarantee", p.cfg.Guarantee, "group", p.cfg.AppID,
		"input", p.cfg.Topics.Events, "changelog", p.changelog, "state_dir", p.cfg.StateDir)
	// Each thread runs its own session; the first fatal error stops all.
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	// A change of the input's partition count stops every thread; their
	// batches then abort (their committers check the layout, commit.go).
	var layoutErr error
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		if layoutErr = p.watchLayout(tctx); layoutErr != nil {
			stop()
		}
	}()
	// Standby copies are followed off the threads, by a client of their
	// own; a store failure there stops the instance.
	standing := make(chan struct{})
	go func() {
		defer close(standing)
		if p.sb == nil {
			return
		}
		if err := p.sb.run(tctx, store); err != nil {
			p.fail(err)
		}
	}()
	defer func() { stop(); <-standing }()
	errs := make(chan error, p.cfg.Threads)
	for i := 0; i < p.cfg.Threads; i++ {
		go func() { errs <- p.runThread(tctx, i) }()
	}
	var first error
	for i := 0; i < p.cfg.Threads; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
			stop()
		}
	}
	p.restores.Wait() // every thread stopped its own; this one is a backstop
	stop()
	<-watching
	if first == nil && layoutErr != nil {
		first = fmt.Errorf("%w: %w", ErrFatal, layoutErr)
	}
	if first != nil {
		return first
	}
	p.log.Info("stopped", "stats", p.Stats())
	return nil
}

// runThread runs sessions for thread i, a new one after each transient
// failure, until ctx is done (nil) or a fatal error.
func (p *Processor) runThread(ctx context.Context, i int) error {
	backoff := time.Second
	for {
		err := p.runSession(ctx, i)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrFatal) {
			return err
		}
		p.log.Warn("kafka session failed; starting a new one", "thread", i, "err", err, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// runSession runs one client (one transactional session) of thread i until
// ctx is done or it fails: it polls, processes a batch, ends it (commit.go),
// and so on.
func (p *Processor) runSession(ctx context.Context, i int) (err error) {
	c, cl, limits, err := p.newSessionClient(ctx, i)
	if err != nil {
		return err
	}
	p.sessionRunning(i, true)
	// cur is the batch being processed: if the session ends with an
	// error before it is ended, it failed.
	var cur *batch
	defer func() {
		if err != nil && ctx.Err() == nil && cur != nil {
			p.batchEnded(cur, false)
		}
		if p.sb != nil && i == 0 {
			p.sb.setClient(nil)
		}
		c.close() // leaves the group; the revoke callback stops restores
		p.stopRestores(i)
		p.sessionRunning(i, false)
	}()

	// warm is the overlay of the last batch (committed, or at_least_once
	// being committed): the next batch reads an order there before the
	// store (its states are the batch's, already decoded). It is dropped
	// when partitions move.
	var (
		warm       overlay
		warmGen    uint64
		lastSweep  time.Time
		lastTimers time.Time
	)
	for {
		fs, err := p.poll(ctx, cl, lastSweep, lastTimers)
		if err != nil || ctx.Err() != nil {
			return err
		}
		if fs.Empty() && time.Since(lastSweep) < p.cfg.SweepInterval && !p.timersDue(lastTimers) {
			continue
		}
		gen := p.rebalances.Load()
		if gen != warmGen {
			warm = nil // the last batch's states must be in the store before this one reads it
			if err := c.settle(); err != nil {
				return err
			}
		}
		b := newBatch(p.changelog, c.memory(), p.leaves, warm)
		b.limits, cur = limits, b
		if lastSweep, lastTimers, err = p.processBatch(ctx, c, cl, i, b, fs, lastSweep, lastTimers); err != nil {
			return err
		}
		ok, err := c.end(ctx, b)
		if err != nil {
			return err
		}
		cur = nil
		if ok {
			warm, warmGen = b.overlay, gen
		}
	}
}

// sessionRunning counts thread i's session in (running) or out of the
// running ones.
func (p *Processor) sessionRunning(i int, running bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if running {
		p.mu.running++
		return
	}
	p.mu.running--
	delete(p.mu.joined, i)
}

// sleep waits for d, or until ctx is done (false).
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// poll waits for the records of the next batch, at most until the retention
// sweep is due. It returns nothing when the session is to end: an error, or
// nil once ctx is done.
func (p *Processor) poll(ctx context.Context, cl *kgo.Client, lastSweep, lastTimers time.Time) (kgo.Fetches, error) {
	select {
	case err := <-p.fatal:
		return nil, err
	default:
	}
	pollCtx, cancel := ctx, context.CancelFunc(func() {})
	var wake time.Time
	if p.cfg.Retention > 0 {
		// Wake up for the retention sweep even when no records come.
		wake = lastSweep.Add(p.cfg.SweepInterval)
	}
	if p.timers {
		// And for the timers' clock pass.
		if t := lastTimers.Add(p.cfg.CommitInterval); wake.IsZero() || t.Before(wake) {
			wake = t
		}
	}
	if !wake.IsZero() {
		pollCtx, cancel = context.WithDeadline(ctx, wake)
	}
	fs := cl.PollRecords(pollCtx, p.cfg.MaxBatchRecords)
	cancel()
	if ctx.Err() != nil {
		return nil, nil
	}
	if err := fetchErr(fs); err != nil {
		return nil, err
	}
	if fs.NumRecords() == 0 && retriableFetchErrors(fs) {
		// The client retries by itself; don't spin while it does.
		sleep(ctx, 250*time.Millisecond) // ctx done: the caller sees it
	}
	return fs, nil
}

// idleFetchWait is how long a batch of Config.EndIdleBatches waits, when no
// fetched input is waiting, for the fetch its last poll started: long
// enough for a fetch that finds records at the broker to come back on a
// busy machine, short against the commit interval.
const idleFetchWait = 3 * time.Millisecond

// processBatch begins batch b, runs the retention sweep and the timers'
// clock pass in it if due (lastSweep and lastTimers are when the last ones
// ran; it returns when these did), processes fs, the batch's first poll,
// then polls and processes more until the commit interval has passed, the
// batch is full or it is to abort (or, with Config.EndIdleBatches, no
// fetched input is waiting).
func (p *Processor) processBatch(ctx context.Context, c committer, cl *kgo.Client, i int, b *batch, fs kgo.Fetches, lastSweep, lastTimers time.Time) (time.Time, time.Time, error) {
	if err := c.begin(); err != nil {
		return lastSweep, lastTimers, err
	}
	lastSweep, err := p.sweepIfDue(ctx, c, cl, i, b, lastSweep)
	if err != nil {
		return lastSweep, lastTimers, err
	}
	if lastTimers, err = p.fireDueIfDue(ctx, c, cl, i, b, lastTimers); err != nil {
		return lastSweep, lastTimers, err
	}
	started := time.Now()
	defer func() { p.m.phase(phaseFill, started) }()
	p.processFetches(cl, i, b, fs)
	deadline := started.Add(p.cfg.CommitInterval)
	for b.records < p.cfg.MaxBatchRecords && !b.abort && ctx.Err() == nil {
		until := deadline
		idle := p.cfg.EndIdleBatches && cl.BufferedFetchRecords() == 0
		if idle {
			// Nothing fetched is waiting. The client starts its next
			// fetch only once the last one is taken, so the records that
			// arrived while the last batch ended come in the fetch the
			// last poll started: wait for it a moment, and end the batch
			// if it brings nothing, rather than hold what the batch has
			// for the rest of the interval.
			if w := time.Now().Add(idleFetchWait); w.Before(deadline) {
				until = w
			}
		}
		pctx, cancel := context.WithDeadline(ctx, until)
		fs := cl.PollRecords(pctx, p.cfg.MaxBatchRecords-b.records)
		cancel()
		if err := fetchErr(fs); err != nil {
			return lastSweep, lastTimers, err
		}
		p.processFetches(cl, i, b, fs)
		if time.Now().After(deadline) || idle && fs.NumRecords() == 0 {
			break
		}
	}
	return lastSweep, lastTimers, nil
}

// sweepIfDue runs the retention sweep in batch b when it is due (last is
// when the last one ran), and returns when this one ran: the zero time if
// it left orders to sweep in the next batch.
func (p *Processor) sweepIfDue(ctx context.Context, c committer, cl *kgo.Client, i int, b *batch, last time.Time) (time.Time, error) {
	if p.cfg.Retention <= 0 || time.Since(last) < p.cfg.SweepInterval {
		return last, nil
	}
	// The sweep reads the store, and writes to it (Expired drops stale
	// index entries): at_least_once's last batch must be stored first, as
	// the store serialises a partition's writers.
	if err := c.settle(); err != nil {
		return last, err
	}
	now := time.Now()
	behind, err := p.sweep(ctx, cl, i, b)
	if err != nil {
		return now, err
	}
	if behind { // sweep again in the next batch
		return time.Time{}, nil
	}
	return now, nil
}

// fetchErr classifies the errors of a poll: the client closed, or an
// authorization or authentication failure (fatal: retrying cannot fix
// credentials or ACLs). Other fetch errors are retried by the client itself.
func fetchErr(fs kgo.Fetches) error {
	var err error
	fs.EachError(func(t string, part int32, e error) {
		switch {
		case errors.Is(e, context.Canceled), errors.Is(e, context.DeadlineExceeded):
		case errors.Is(e, kgo.ErrClientClosed):
			err = e
		case errors.Is(e, kerr.SaslAuthenticationFailed), errors.Is(e, kerr.TopicAuthorizationFailed),
			errors.Is(e, kerr.GroupAuthorizationFailed), errors.Is(e, kerr.ClusterAuthorizationFailed),
			errors.Is(e, kerr.TransactionalIDAuthorizationFailed):
			err = fmt.Errorf("%w: consuming %s partition %d: %w (check the credentials and ACLs)", ErrFatal, t, part, e)
		}
	})
	return err
}

// retriableFetchErrors reports whether fs holds fetch errors other than the
// poll's own context ending.
func retriableFetchErrors(fs kgo.Fetches) bool {
	found := false
	fs.EachError(func(_ string, _ int32, e error) {
		if !errors.Is(e, context.Canceled) && !errors.Is(e, context.DeadlineExceeded) {
			found = true
		}
	})
	return found
}

// processFetches applies every record of fs to the batch.
func (p *Processor) processFetches(cl producer, thread int, b *batch, fs kgo.Fetches) {
	fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
		if len(ftp.Records) == 0 {
			return
		}
		owned, ready, ps := p.partitionOf(thread, ftp.Partition)
		switch {
		case !owned && p.cfg.Guarantee == AtLeastOnce:
			// Polled before the partition was revoked: its new owner reads
			// them from the committed offset.
			return
		case !owned:
			// Polled before the partition was revoked: the revocation
			// aborts this transaction anyway, and the records must not be
			// skipped (their offsets would commit with the transaction).
			p.log.Debug("records of a revoked partition; aborting the batch", "partition", ftp.Partition)
			b.abortFor(fmt.Sprintf("records of partition %d, revoked during the batch", ftp.Partition))
			return
		case !ready:
			// Fetching starts after the assignment callback paused the
			// partition, so this should not happen; if it does, abort,
			// which rewinds to the committed offsets.
			p.log.Warn("records from a partition that is not restored; aborting the batch", "partition", ftp.Partition)
			b.abortFor(fmt.Sprintf("records of partition %d, not restored yet", ftp.Partition))
			return
		}
		b.setPartition(ftp.Partition, ps.known, ps.census)
		p.m.fetched(ftp.Records[0].Timestamp)
		p.processRecords(cl, b, ftp.Records, p.cfg.Now())
		last := ftp.Records[len(ftp.Records)-1]
		b.next[ftp.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
	})
}

// produceChunk is how many input records processRecords processes before
// it hands their output records to the client.
const produceChunk = 128

// processRecords applies records, of the batch's current partition
// (setPartition), to the batch. It hands their output records to the
// client produceChunk input records at a time, in order: a run of Produce
// calls finds the client's topic and partition lookups and the partition's
// buffer in the CPU's caches, where a call after each record found them
// evicted by the decoding, state and encoding work in between.
func (p *Processor) processRecords(cl producer, b *batch, records []*kgo.Record, now time.Time) {
	for i, r := range records {
		p.process(b, r, now)
		if i%produceChunk == produceChunk-1 {
			b.flush(cl)
		}
	}
	b.flush(cl)
}

// partitionState reports whether a thread owns an input partition, whether
// it is restored and consuming, and then the orders it may hold.
func (p *Processor) partitionState(thread int, part int32) (owned, ready bool, known *knownOrders) {
	owned, ready, ps := p.partitionOf(thread, part)
	if !ready {
		return owned, false, nil
	}
	return true, true, ps.known
}

// partitionOf is partitionState with the partition itself, once ready.
func (p *Processor) partitionOf(thread int, part int32) (owned, ready bool, ps *partition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps, ok := p.mu.parts[part]
	if !ok || ps.thread != thread {
		return false, false, nil
	}
	if !ps.ready {
		return true, false, nil
	}
	return true, true, ps
}

// readyOf returns the restored partitions of a thread.
func (p *Processor) readyOf(thread int) []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int32
	for part, ps := range p.mu.parts {
		if ps.thread == thread && ps.ready {
			out = append(out, part)
		}
	}
	return out
}

// The identities of an instance's clients. An instance id holds no space
// or slash (Config.Validate), so "/" ends it without ambiguity: instance
// "b-1" cannot take the ids of a thread of instance "b", as it could when
// the thread's number followed a "-".

// transactionalID is thread i's transactional id: "<app-id>-<instance-id>"
// for the first thread, "<app-id>-<instance-id>/<i>" for the others.
// Stable across restarts, so a restarted instance fences its crashed
// predecessor and aborts its open transactions. The first thread keeps the
// id of earlier versions (docs/design.md: what an upgrade does to the
// others).
func (p *Processor) transactionalID(i int) string {
	id := p.cfg.AppID + "-" + p.cfg.InstanceID
	if i > 0 {
		id += "/" + strconv.Itoa(i)
	}
	return id
}

// threadClientID is the client id of thread i's consumer-group member:
// "<app-id>-<instance-id>/thread-<i>", which the group's members list (as
// kafka-consumer-groups --describe --members shows) and the broker's logs
// and quotas use. The instance's other clients use
// "<app-id>-<instance-id>".
func (p *Processor) threadClientID(i int) string {
	return p.cfg.AppID + "-" + p.cfg.InstanceID + "/thread-" + strconv.Itoa(i)
}

// instanceOfClientID is the instance id in the client id of a member of
// the group app: what follows "<app>-", up to a "/" (earlier versions'
// members have none).
func instanceOfClientID(app, clientID string) string {
	inst, _, _ := strings.Cut(strings.TrimPrefix(clientID, app+"-"), "/")
	return inst
}

// process applies one input record; now is the processing time of its poll.
// Every record it produces carries the input record's timestamp, as Kafka
// Streams' outputs do.
func (p *Processor) process(b *batch, r *kgo.Record, now time.Time) {
	b.records++
	if p.layout != nil {
		// Which partitioner placed the record (counted), and whether the
		// one in use did under the count the instance started with.
		placed := p.routing.place(r, p.layout.partitions)
		b.counts.placed[placed]++
		if len(r.Key) > 0 && placed != p.routing.partitioner() {
			b.counts.mismatched++
			b.misrouted = true
		}
	}
	b.counts.event(r.Timestamp)
	ev := &b.ev // DecodeEventShared resets it and reuses its attributes map
	if err := p.codec.DecodeEventShared(b.keepInput(r.Value), ev); err != nil {
		if !errors.Is(err, avro.ErrMalformed) {
			// Not the record's fault (e.g. the schema registry is down):
			// retry the batch rather than dead-letter good records.
			p.log.Error("decoding an event failed; retrying the batch", "partition", r.Partition, "offset", r.Offset, "err", err)
			b.abortFor("decoding an event failed (not the record's fault): " + err.Error())
			return
		}
		p.deadLetter(b, r, err)
		return
	}
	if string(r.Key) != ev.OrderID {
		p.deadLetter(b, r, fmt.Errorf("record key %q is not the event's order_id %q: events must be keyed by order id", r.Key, ev.OrderID))
		return
	}
	e, err := p.load(b, ev.OrderID)
	if err != nil {
		// The store failed: abort rather than act on a wrong state.
		p.log.Error("reading the state store", "partition", r.Partition, "order", ev.OrderID, "err", err)
		b.abortFor("reading the state store failed: " + err.Error())
		p.storeFailed(err) // a corrupt or full store fails every retry: stop
		return
	}
	if p.timers {
		// Timers due strictly before the event fire first.
		if e.timed && topology.DueBefore(e.due, ev.OccurredAt) {
			if !p.fireTimers(b, r.Partition, r.Key, e, ev.OccurredAt, false, r.Timestamp, now) {
				return
			}
		}
	}
	out := &b.out // in the batch: the records built below point into it
	*out = topology.ApplyWith(p.cfg.Machine, e.current(), ev, &b.slab)
	if !out.Accepted {
		p.reject(b, r, ev, out, now)
		return
	}
	next := &out.Next
	if next.ClosedAt == nil && p.terminal[out.ToLeaf] {
		next.ClosedAt = b.closedAtPtr(now)
	}
	// Both records are built and checked against their topics' limits
	// before either is produced or the order's entry changes: an outcome
	// that cannot be written becomes a rejection.
	var hdrs []kgo.RecordHeader
	if p.cfg.Guarantee == AtLeastOnce {
		hdrs = b.mem.header(HeaderSourceOffset, b.mem.keep(strconv.AppendInt(b.mem.space(), r.Offset, 10)))
	}
	sc := avro.StatusChangeFromOutcome(ev, out, now)
	recs, err := p.transitionRecords(b, r.Partition, r.Key, next, &sc, hdrs, r.Timestamp)
	if err != nil {
		p.log.Error("building a transition's records", "err", err)
		b.abortFor("building a transition's records failed: " + err.Error())
		return
	}
	if recs.reason != "" {
		p.rejectTooLarge(b, r, ev, out, recs.reason, recs.detail, now)
		return
	}
	b.counts.moved(out.FromLeaf, out.ToLeaf)
	if !e.exists {
		b.known.add(ev.OrderID)
	}
	e.setState(next, p.timerMachine())
	e.value, e.dirty = recs.state, true
	b.produce(recs.changelog)
	b.produce(recs.status)
}

// load returns the batch's entry for an order of the batch's current
// partition (setPartition), reading the store on a miss.
func (p *Processor) load(b *batch, id string) (*entry, error) {
	if e, ok := b.cur[id]; ok {
		return e, nil
	}
	e := b.newEntry()
	if w, ok := b.prev[id]; ok {
		e.state, e.exists, e.due, e.timed = w.state, w.exists, w.due, w.timed
		own(&e.state)
		e.was = censusKeyOf(e.current())
		b.cur[id] = e
		return e, nil
	}
	if !b.known.mayExist(id) {
		b.cur[id] = e
		return e, nil
	}
	v, ok, err := p.store.Get(b.part, []byte(id))
	if err != nil {
		return nil, err
	}
	if ok {
		if err := p.stateCodec.DecodeState(v, &e.state); err != nil {
			return nil, fmt.Errorf("decoding the stored state of %s: %w", id, err)
		}
		e.setState(&e.state, p.timerMachine())
		e.was = censusKeyOf(&e.state)
	}
	b.cur[id] = e
	return e, nil
}

// closedAt tells the store when an encoded state closed, for its retention
// index. The store calls it on every value written: it reads closed_at
// without decoding the rest of the state.
func (p *Processor) closedAt(value []byte) (int64, bool) {
	ms, closed, err := p.stateCodec.StateClosedAt(value)
	return ms, closed && err == nil
}

// sweep deletes the orders of ready partitions whose retention has passed:
// a tombstone to the changelog in this batch's transaction, and a delete in
// its Pebble batch. It takes at most SweepLimit orders of a partition, and
// reports whether it reached that limit in any (behind: more may be left).
func (p *Processor) sweep(ctx context.Context, cl producer, thread int, b *batch) (behind bool, err error) {
	cutoff := p.cfg.Now().Add(-p.cfg.Retention)
	for _, part := range p.readyOf(thread) {
		ids, err := p.store.Expired(part, cutoff, p.cfg.SweepLimit)
		if err != nil {
			return false, fmt.Errorf("%w: retention sweep of partition %d: %w", ErrFatal, part, err)
		}
		more := len(ids) == p.cfg.SweepLimit
		behind = behind || more
		for _, id := range ids {
			b.overlay.of(part, 0)[string(id)] = &entry{dirty: true}
			b.produce(&kgo.Record{Topic: p.changelog, Partition: part, Key: id})
		}
		b.flush(cl)
		if len(ids) > 0 {
			p.log.Info("retention: deleting closed orders", "partition", part, "orders", len(ids), "closed_before", cutoff, "more_left", more)
		}
	}
	return behind, nil
}
