package statestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Restore defaults.
const (
	// DefaultRestoreBatchRecords is the default RestoreOptions.BatchRecords.
	DefaultRestoreBatchRecords = 16384
	// DefaultRestoreBatchBytes is the default RestoreOptions.BatchBytes.
	DefaultRestoreBatchBytes = 8 << 20
	// DefaultRestoreFetchMaxBytes is the default fetch size of the restore
	// client (kgo.FetchMaxBytes and kgo.FetchMaxPartitionBytes). A
	// processor restores its partitions concurrently, each with its own
	// client holding a fetch or two: 4 MiB (some 20,000 states) keeps that
	// memory small and costs a restore no throughput.
	DefaultRestoreFetchMaxBytes = 4 << 20
)

// ErrClientOptions is returned by Restore when the client options would make
// the restore client join a consumer group, consume topics or produce
// transactionally; pass connection options only.
var ErrClientOptions = errors.New("statestore: restore client options must be connection options only")

// RestoreOptions configures one Restore.
type RestoreOptions struct {
	// Topic is the changelog topic. Required.
	Topic string

	// ClientOpts configure the restore's own franz-go client: seed brokers
	// and connection options (TLS, SASL, dialer, client ID), the same as
	// the processor's main client. They must not name a consumer group,
	// topics to consume, or a transactional ID (ErrClientOptions). Restore
	// adds read_committed, kept control records, direct assignment, no
	// offset reset, and fetch sizes of DefaultRestoreFetchMaxBytes placed
	// before ClientOpts, so ClientOpts may override the fetch sizes.
	ClientOpts []kgo.Opt

	// BatchRecords and BatchBytes bound a Pebble batch of the restore (each
	// batch also stores the offset reached). Defaults:
	// DefaultRestoreBatchRecords, DefaultRestoreBatchBytes.
	BatchRecords int
	BatchBytes   int

	// Progress, if not nil, is updated while the restore runs; poll it from
	// another goroutine.
	Progress *Progress

	// filter, if not nil, is called for every changelog record (values and
	// tombstones, not transaction markers) before it is applied; returning
	// false skips the record (the offset still moves past it). The record
	// must not be retained. Tests use it to watch and steer a restore.
	filter func(r *kgo.Record) bool
}

// Progress is a restore's progress, safe to read while it runs.
type Progress struct {
	restored  atomic.Int64
	remaining atomic.Int64
}

// Restored returns the changelog records applied so far.
func (p *Progress) Restored() int64 { return p.restored.Load() }

// Remaining returns the offsets between the position reached and the end
// offset: an upper bound on the records left (compaction, aborted records
// and transaction markers also occupy offsets).
func (p *Progress) Remaining() int64 { return p.remaining.Load() }

// RestoreResult describes a finished restore.
type RestoreResult struct {
	// From and To are the offsets read: [From, To). To is the partition's
	// stored offset afterwards.
	From, To int64
	// Wiped is true if the local copy was discarded and restored from the
	// log start.
	Wiped bool
	// Records counts applied records (values and tombstones); Skipped the
	// records that had no key.
	Records, Skipped int64
	// Duration is the restore's wall time.
	Duration time.Duration
}

// Restore brings partition p of the store level with changelog partition p
// as of the call: it reads from the stored offset to the last stable offset
// listed at the start, read_committed, and applies values and tombstones in
// Pebble batches that each store the offset reached. A stored offset below
// the log-start offset or above the high watermark, or data without an
// offset, makes it wipe the partition and restore from the log start. On
// error or cancellation the store keeps the batches already committed and
// their offset; calling Restore again continues from there.
//
// The end is detected by position: transaction markers, kept as control
// records, occupy offsets. If the offsets just below the end hold records of
// a transaction aborted after the end was listed, the end is seen only when
// a later record or marker arrives (at the latest when the open transaction
// that bounds the end is committed, aborted or timed out).
func (s *Store) Restore(ctx context.Context, p int32, o RestoreOptions) (RestoreResult, error) {
	if err := checkPartition(p); err != nil {
		return RestoreResult{}, err
	}
	if err := s.usable(); err != nil {
		return RestoreResult{}, err
	}
	if o.Topic == "" {
		return RestoreResult{}, errors.New("statestore: restore: Topic is required")
	}
	if o.BatchRecords <= 0 {
		o.BatchRecords = DefaultRestoreBatchRecords
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultRestoreBatchBytes
	}
	if o.Progress == nil {
		o.Progress = new(Progress)
	}
	cl, err := newChangelogClient(o.ClientOpts)
	if err != nil {
		return RestoreResult{}, err
	}
	defer cl.Close()

	start := time.Now()
	r := &restorer{s: s, cl: cl, p: p, o: o}
	var res RestoreResult
	// Log truncation during the restore (the position falls below the log
	// start) makes the next attempt wipe; a few attempts are plenty.
	for attempt := 0; ; attempt++ {
		res, err = r.run(ctx)
		if err == nil || !errors.Is(err, kerr.OffsetOutOfRange) || attempt == 2 {
			break
		}
		s.log.Warn("changelog truncated during restore; restarting", "topic", o.Topic, "partition", p, "err", err)
	}
	res.Duration = time.Since(start)
	if err != nil {
		return res, s.classify(err)
	}
	s.log.Info("restored changelog partition", "topic", o.Topic, "partition", p,
		"from", res.From, "to", res.To, "wiped", res.Wiped, "records", res.Records,
		"skipped", res.Skipped, "duration", res.Duration)
	return res, nil
}

// newChangelogClient makes the client of a restore or a Tailer: the
// caller's connection options, read_committed, control records kept (the
// position moves past transaction markers), direct assignment, no offset
// reset. It refuses options that would make it join a group, consume topics
// or produce transactionally (ErrClientOptions).
func newChangelogClient(clientOpts []kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{
		kgo.FetchMaxBytes(DefaultRestoreFetchMaxBytes),
		kgo.FetchMaxPartitionBytes(DefaultRestoreFetchMaxBytes),
	}, clientOpts...)
	opts = append(opts,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("statestore: changelog client: %w", err)
	}
	fail := func(err error) (*kgo.Client, error) { cl.Close(); return nil, err }
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return fail(fmt.Errorf("%w: consumer group %q", ErrClientOptions, g))
	}
	if t, _ := cl.OptValue(kgo.TransactionalID).(string); t != "" {
		return fail(fmt.Errorf("%w: transactional ID %q", ErrClientOptions, t))
	}
	if ts := cl.GetConsumeTopics(); len(ts) > 0 {
		return fail(fmt.Errorf("%w: consumes topics %v", ErrClientOptions, ts))
	}
	return cl, nil
}

type restorer struct {
	s  *Store
	cl *kgo.Client
	p  int32
	o  RestoreOptions
}

// bounds lists the log start, last stable and high watermark offsets of
// partition p of topic.
func bounds(ctx context.Context, cl *kgo.Client, topic string, p int32) (logStart, end, hwm int64, err error) {
	adm := kadm.NewClient(cl)
	lookup := func(what string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (int64, error) {
		l, err := list(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("list %s offsets of %s: %w", what, topic, err)
		}
		lo, ok := l.Lookup(topic, p)
		if !ok {
			return 0, fmt.Errorf("%s has no partition %d", topic, p)
		}
		if lo.Err != nil {
			return 0, fmt.Errorf("list %s offset of %s/%d: %w", what, topic, p, lo.Err)
		}
		return lo.Offset, nil
	}
	if logStart, err = lookup("start", adm.ListStartOffsets); err != nil {
		return
	}
	if end, err = lookup("last stable", adm.ListCommittedOffsets); err != nil {
		return
	}
	hwm, err = lookup("end", adm.ListEndOffsets)
	return
}

// start returns the offset from which partition p must be read to bring it
// level with its changelog: the stored offset, or the log start after
// wiping the partition if the local copy cannot be trusted (no offset, an
// offset below the log start or above the high watermark). wiped is true
// if data with an offset was discarded.
func (s *Store) start(p int32, topic string, logStart, hwm int64) (from int64, wiped bool, err error) {
	stored, ok, err := s.ChangelogOffset(p)
	if err != nil {
		return 0, false, err
	}
	if ok && stored >= logStart && stored <= hwm {
		return stored, false, nil
	}
	// No offset (nothing restored yet, or data written without one), an
	// offset the log no longer holds, or one it never held (the topic was
	// recreated): the local copy cannot be trusted.
	if ok {
		s.log.Warn("local state of changelog partition unusable; wiping", "topic", topic,
			"partition", p, "stored_offset", stored, "log_start", logStart, "high_watermark", hwm)
	}
	b := s.db.NewBatch()
	err = deletePartition(b, p)
	if err == nil {
		err = b.Set(metaOffsetKey(p), encodeOffset(logStart), nil)
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	_ = b.Close()
	if err != nil {
		return 0, false, fmt.Errorf("wipe partition %d: %w", p, err)
	}
	return logStart, ok, nil
}

// applier writes changelog records of one partition to the store: records
// collected with add go to Pebble at commit, sorted by key, in one batch
// with the offset reached and their retention and due-time index entries.
// Restore and Tailer share it, so a standby copy is written exactly as a
// restore writes it.
type applier struct {
	s       *Store
	p       int32
	filter  func(*kgo.Record) bool
	batch   *pebble.Batch
	pending []*kgo.Record // records of the next batch, in log order
	size    int           // their key and value bytes
	key     []byte
	index   indexBuckets
	due     indexBuckets
	// records counts the records added (applied at the next commit),
	// skipped those without a key or refused by filter.
	records, skipped int64
}

func newApplier(s *Store, p int32, filter func(*kgo.Record) bool) *applier {
	return &applier{
		s: s, p: p, filter: filter,
		batch: s.db.NewBatch(pebble.WithInitialSizeBytes(1 << 20)),
		due:   indexBuckets{prefix: dueIndexPrefix},
	}
}

// add takes record rec (a value or a tombstone, not a control record) for
// the next commit. The record is held until then.
func (a *applier) add(rec *kgo.Record) {
	if len(rec.Key) == 0 || (a.filter != nil && !a.filter(rec)) {
		a.skipped++
		return
	}
	a.pending = append(a.pending, rec)
	a.size += len(rec.Key) + len(rec.Value)
	a.records++
}

// full reports whether the pending records reach a batch's bounds.
func (a *applier) full(records, bytes int) bool { return len(a.pending) >= records || a.size >= bytes }

// commit writes the pending records and the offset reached, pos, in one
// Pebble batch. The records go in key order (a stable sort keeps the log
// order of one key's records, so the last one wins): a memtable takes
// sorted keys several times faster than random ones, and that insert is
// most of a restore's cost.
func (a *applier) commit(pos int64) error {
	s, p, batch := a.s, a.p, a.batch
	slices.SortStableFunc(a.pending, func(x, y *kgo.Record) int { return bytes.Compare(x.Key, y.Key) })
	for _, rec := range a.pending {
		a.key = appendOrderKey(a.key[:0], p, rec.Key)
		if rec.Value == nil {
			if err := batch.Delete(a.key, nil); err != nil {
				return err
			}
			continue
		}
		if err := batch.Set(a.key, rec.Value, nil); err != nil {
			return err
		}
		if s.closedAt != nil {
			if at, closed := s.closedAt(rec.Value); closed {
				a.index.add(p, at, rec.Key)
			}
		}
		if s.dueAt != nil {
			if at, pending := s.dueAt(rec.Value); pending {
				a.due.add(p, at, rec.Key)
			}
		}
	}
	if err := a.index.write(batch); err != nil {
		return err
	}
	if err := a.due.write(batch); err != nil {
		return err
	}
	if err := batch.Set(metaOffsetKey(p), encodeOffset(pos), nil); err != nil {
		return err
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("statestore: commit changelog records: %w", err)
	}
	batch.Reset()
	clear(a.pending)
	a.pending, a.size = a.pending[:0], 0
	return nil
}

func (a *applier) close() { _ = a.batch.Close() }

func (r *restorer) run(ctx context.Context) (RestoreResult, error) {
	s, p := r.s, r.p
	logStart, end, hwm, err := bounds(ctx, r.cl, r.o.Topic, p)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("statestore: restore: %w", err)
	}
	from, wiped, err := s.start(p, r.o.Topic, logStart, hwm)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("statestore: restore: %w", err)
	}
	res := RestoreResult{From: from, To: from, Wiped: wiped}
	r.o.Progress.remaining.Store(max(end-from, 0))
	if from >= end {
		return res, nil
	}

	r.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.o.Topic: {p: kgo.NewOffset().At(from)}})
	defer r.cl.RemoveConsumePartitions(map[string][]int32{r.o.Topic: {p}})

	a := newApplier(s, p, r.o.filter)
	defer a.close()
	pos := from
	commit := func() error {
		if err := a.commit(pos); err != nil {
			return err
		}
		res.To = pos
		return nil
	}
	count := func() { res.Records, res.Skipped = a.records, a.skipped }

	for pos < end {
		fs := r.cl.PollFetches(ctx)
		// ferr stops the restore; with keep, the batch read so far is
		// committed first (a fetch error or cancellation: the batch holds
		// whole records and the offset reached, so it is consistent).
		var ferr error
		keep := true
		fs.EachError(func(t string, part int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("statestore: restore: fetch %s/%d: %w", t, part, err)
			}
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if fp.Topic != r.o.Topic || fp.Partition != p {
				return
			}
			for _, rec := range fp.Records {
				if ferr != nil || pos >= end {
					return
				}
				if rec.Offset < pos {
					continue
				}
				if rec.Offset >= end {
					// Past the end: everything below it was
					// aborted data or markers.
					pos = end
					return
				}
				if !rec.Attrs.IsControl() {
					a.add(rec)
				}
				pos = rec.Offset + 1
				if a.full(r.o.BatchRecords, r.o.BatchBytes) {
					if err := commit(); err != nil {
						ferr, keep = err, false
					}
				}
			}
		})
		count()
		r.o.Progress.restored.Store(res.Records)
		r.o.Progress.remaining.Store(max(end-pos, 0))
		if ferr == nil && ctx.Err() != nil {
			ferr = fmt.Errorf("statestore: restore: %w", ctx.Err())
		}
		if ferr != nil {
			// Keep what was read: data and offset are consistent.
			if keep && pos > res.To {
				if err := commit(); err != nil {
					return res, errors.Join(ferr, err)
				}
			}
			return res, ferr
		}
	}
	if err := commit(); err != nil {
		return res, err
	}
	count()
	return res, nil
}
