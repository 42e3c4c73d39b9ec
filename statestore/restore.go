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
	opts := append([]kgo.Opt{
		kgo.FetchMaxBytes(DefaultRestoreFetchMaxBytes),
		kgo.FetchMaxPartitionBytes(DefaultRestoreFetchMaxBytes),
	}, o.ClientOpts...)
	opts = append(opts,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("statestore: restore client: %w", err)
	}
	defer cl.Close()
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return RestoreResult{}, fmt.Errorf("%w: consumer group %q", ErrClientOptions, g)
	}
	if t, _ := cl.OptValue(kgo.TransactionalID).(string); t != "" {
		return RestoreResult{}, fmt.Errorf("%w: transactional ID %q", ErrClientOptions, t)
	}
	if ts := cl.GetConsumeTopics(); len(ts) > 0 {
		return RestoreResult{}, fmt.Errorf("%w: consumes topics %v", ErrClientOptions, ts)
	}

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

type restorer struct {
	s  *Store
	cl *kgo.Client
	p  int32
	o  RestoreOptions
}

// bounds lists the log start, last stable and high watermark offsets.
func (r *restorer) bounds(ctx context.Context) (logStart, end, hwm int64, err error) {
	adm := kadm.NewClient(r.cl)
	lookup := func(what string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (int64, error) {
		l, err := list(ctx, r.o.Topic)
		if err != nil {
			return 0, fmt.Errorf("statestore: restore: list %s offsets of %s: %w", what, r.o.Topic, err)
		}
		lo, ok := l.Lookup(r.o.Topic, r.p)
		if !ok {
			return 0, fmt.Errorf("statestore: restore: %s has no partition %d", r.o.Topic, r.p)
		}
		if lo.Err != nil {
			return 0, fmt.Errorf("statestore: restore: list %s offset of %s/%d: %w", what, r.o.Topic, r.p, lo.Err)
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

func (r *restorer) run(ctx context.Context) (RestoreResult, error) {
	s, p := r.s, r.p
	logStart, end, hwm, err := r.bounds(ctx)
	if err != nil {
		return RestoreResult{}, err
	}
	stored, ok, err := s.ChangelogOffset(p)
	if err != nil {
		return RestoreResult{}, err
	}
	var res RestoreResult
	from := stored
	if !ok || stored < logStart || stored > hwm {
		// No offset (nothing restored yet, or data written without
		// one), an offset the log no longer holds, or one it never held
		// (the topic was recreated): the local copy cannot be trusted.
		if ok {
			s.log.Warn("local state of changelog partition unusable; wiping", "topic", r.o.Topic,
				"partition", p, "stored_offset", stored, "log_start", logStart, "high_watermark", hwm)
		}
		b := s.db.NewBatch()
		err := deletePartition(b, p)
		if err == nil {
			err = b.Set(metaOffsetKey(p), encodeOffset(logStart), nil)
		}
		if err == nil {
			err = b.Commit(pebble.NoSync)
		}
		_ = b.Close()
		if err != nil {
			return RestoreResult{}, fmt.Errorf("statestore: restore: wipe partition %d: %w", p, err)
		}
		from, res.Wiped = logStart, ok
	}
	res.From, res.To = from, from
	r.o.Progress.remaining.Store(max(end-from, 0))
	if from >= end {
		return res, nil
	}

	r.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.o.Topic: {p: kgo.NewOffset().At(from)}})
	defer r.cl.RemoveConsumePartitions(map[string][]int32{r.o.Topic: {p}})

	var (
		batch   = s.db.NewBatch(pebble.WithInitialSizeBytes(1 << 20))
		pending []*kgo.Record // records of the next batch, in log order
		size    int           // their key and value bytes
		pos     = from
		key     []byte
		index   indexBuckets
		due     = indexBuckets{prefix: dueIndexPrefix}
	)
	defer func() { _ = batch.Close() }()
	// commit writes the pending records and the offset reached in one
	// Pebble batch. The records go in key order (a stable sort keeps the
	// log order of one key's records, so the last one wins): a memtable
	// takes sorted keys several times faster than random ones, and that
	// insert is most of a restore's cost.
	commit := func() error {
		slices.SortStableFunc(pending, func(a, b *kgo.Record) int { return bytes.Compare(a.Key, b.Key) })
		for _, rec := range pending {
			key = appendOrderKey(key[:0], p, rec.Key)
			if rec.Value == nil {
				if err := batch.Delete(key, nil); err != nil {
					return err
				}
				continue
			}
			if err := batch.Set(key, rec.Value, nil); err != nil {
				return err
			}
			if s.closedAt != nil {
				if at, closed := s.closedAt(rec.Value); closed {
					index.add(p, at, rec.Key)
				}
			}
			if s.dueAt != nil {
				if at, pending := s.dueAt(rec.Value); pending {
					due.add(p, at, rec.Key)
				}
			}
		}
		if err := index.write(batch); err != nil {
			return err
		}
		if err := due.write(batch); err != nil {
			return err
		}
		if err := batch.Set(metaOffsetKey(p), encodeOffset(pos), nil); err != nil {
			return err
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("statestore: restore: commit: %w", err)
		}
		batch.Reset()
		clear(pending)
		pending, size = pending[:0], 0
		res.To = pos
		return nil
	}
	apply := func(rec *kgo.Record) {
		if len(rec.Key) == 0 || (r.o.filter != nil && !r.o.filter(rec)) {
			res.Skipped++
			return
		}
		pending = append(pending, rec)
		size += len(rec.Key) + len(rec.Value)
		res.Records++
	}

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
					apply(rec)
				}
				pos = rec.Offset + 1
				if len(pending) >= r.o.BatchRecords || size >= r.o.BatchBytes {
					if err := commit(); err != nil {
						ferr, keep = err, false
					}
				}
			}
		})
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
	return res, nil
}
