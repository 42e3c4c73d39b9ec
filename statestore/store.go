package statestore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("statestore: store closed")
	// ErrFormat is returned by Open for a database written in an unknown
	// keyspace format.
	ErrFormat = errors.New("statestore: unknown keyspace format")
	// ErrInUse is returned by Open for a directory whose store another
	// Store holds open (Pebble's lock file), in this process or another.
	ErrInUse = errors.New("in use")
)

// Store is the Pebble database of one orderflow instance. Open it with Open,
// close it with Close.
type Store struct {
	db       *pebble.DB
	dir      string
	closedAt func([]byte) (int64, bool)
	dueAt    func([]byte) (int64, bool)
	log      *slog.Logger
	closed   atomic.Bool
	health   health
	failed   chan struct{} // closed with the store's first failure

	stalls struct {
		count atomic.Int64
		nanos atomic.Int64
		mu    sync.Mutex // guards began
		began time.Time
	}
}

// Open opens (creating if needed) the store at o.Dir on o.FS. o is not
// modified.
func Open(o Options) (*Store, error) {
	o = o.ensureDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Store{dir: o.Dir, closedAt: o.ClosedAt, dueAt: o.DueAt, log: o.Logger, failed: make(chan struct{})}
	po := &pebble.Options{
		FS:                 o.FS,
		FormatMajorVersion: pebble.FormatNewest,
		CacheSize:          o.CacheSize,
		MemTableSize:       o.MemTableSize,
		// A restore writes faster than one flush drains a memtable:
		// queue up to four before stalling writes.
		MemTableStopWritesThreshold: 4,
		// No write-ahead log, as Kafka Streams runs RocksDB: the changelog
		// is the store's log. A crash loses what the memtables held, which
		// leaves the store at an earlier batch boundary (states and their
		// changelog offsets go in one batch), and restore reads the rest.
		// Commits then never wait on the disk: a WAL write could block
		// behind the broker's page-cache writeback for a long time.
		DisableWAL:    true,
		Logger:        pebbleLogger{o.Logger, s},
		EventListener: s.eventListener(),
	}
	// Processing looks orders up by key, many of them new: bloom filters
	// answer "not here" without reading data blocks.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Uncompressed blocks, as Kafka Streams runs RocksDB: the small Avro
	// states compress poorly, and compressing them again on every flush and
	// compaction would spend the processor's CPU on disk space it does not
	// need.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	po.EnsureDefaults()
	if err := checkSpace(o.FS, o.Dir); err != nil {
		return nil, err
	}
	db, err := s.openPebble(po)
	if err != nil {
		if inUse(err) {
			return nil, fmt.Errorf("statestore: %s is %w: another process (another orderflow instance?) has the store open; each instance needs a state directory of its own: %w", o.Dir, ErrInUse, err)
		}
		return nil, s.classify(fmt.Errorf("statestore: open %s: %w", o.Dir, err))
	}
	s.db = db
	if err := s.checkFormat(); err != nil {
		s.closed.Store(true)
		_ = db.Close()
		return nil, s.classify(err)
	}
	return s, nil
}

func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get(formatKey())
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(formatKey(), []byte(formatVersion), pebble.NoSync); err != nil {
			return fmt.Errorf("statestore: write format: %w", err)
		}
		if err := s.db.Flush(); err != nil { // no WAL: durable once flushed
			return fmt.Errorf("statestore: write format: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("statestore: read format: %w", err)
	}
	format := string(v)
	_ = closer.Close()
	switch format {
	case formatVersion:
		return nil
	case formatVersion1: // Expired reads its index keys; new entries go in buckets
		if err := s.db.Set(formatKey(), []byte(formatVersion), pebble.NoSync); err != nil {
			return fmt.Errorf("statestore: upgrade format: %w", err)
		}
		if err := s.db.Flush(); err != nil {
			return fmt.Errorf("statestore: upgrade format: %w", err)
		}
		return nil
	}
	return fmt.Errorf("%w %q (this build reads %q and %q)", ErrFormat, format, formatVersion1, formatVersion)
}

func (s *Store) eventListener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: s.backgroundError,
		DataCorruption:  s.dataCorruption,
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			s.stalls.count.Add(1)
			s.stalls.mu.Lock()
			s.stalls.began = time.Now()
			s.stalls.mu.Unlock()
			s.log.Warn("pebble write stall", "component", "pebble", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			s.stalls.mu.Lock()
			d := time.Since(s.stalls.began)
			s.stalls.mu.Unlock()
			s.stalls.nanos.Add(int64(d))
			s.log.Info("pebble write stall ended", "component", "pebble", "duration", d)
		},
	}
}

// Close flushes the committed batches to disk and closes the database.
// Uncommitted batches are lost (the changelog has them). Calling Close again
// returns ErrClosed. Close must not race other calls on the store.
//
// A store that failed (ErrDiskFull, ErrCorrupt) is closed without the
// flush, and Close returns the failure: Pebble retries a failed flush at
// once and without end, so waiting for it on a full disk waited forever.
// A flush that fails during Close makes that the failure the same way.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return ErrClosed
	}
	// Without a WAL, what the memtables hold is on disk only once flushed.
	var err error
	if err = s.failure(); err == nil {
		err = s.flush()
	}
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = s.classify(cerr)
	}
	s.health.mu.Lock()
	repeat := s.health.repeat
	s.health.mu.Unlock()
	if repeat > 0 {
		s.log.Debug("pebble background errors after the store failed", "component", "pebble", "count", repeat)
	}
	if err != nil {
		return fmt.Errorf("statestore: close: %w", err)
	}
	return nil
}

// flush flushes the memtables and waits until they are on disk or the
// store fails.
func (s *Store) flush() error {
	done, err := s.db.AsyncFlush()
	if err != nil {
		return s.classify(err)
	}
	select {
	case <-done:
		return nil
	case <-s.failed:
		return s.failure()
	}
}

// get reads key from the database and returns a copy of its value.
func (s *Store) get(key []byte) ([]byte, bool, error) {
	if err := s.usable(); err != nil {
		return nil, false, err
	}
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.classify(fmt.Errorf("statestore: get: %w", err))
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

// EachOrder calls fn with the ID of every order partition p holds, in key
// order, from a consistent snapshot of the store. id is valid only during
// the call. Only keys are read, so it costs far less than reading the
// states: the processor uses it to learn which orders exist.
func (s *Store) EachOrder(p int32, fn func(id []byte)) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	if err := s.usable(); err != nil {
		return err
	}
	lo, hi := partitionBounds(p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return s.classify(fmt.Errorf("statestore: each order: %w", err))
	}
	for valid := it.First(); valid; valid = it.Next() {
		fn(it.Key()[len(lo):])
	}
	// An iterator stops at a block that fails its checksum: Close returns
	// why (it.Error's error).
	if err := it.Close(); err != nil {
		return s.classify(fmt.Errorf("statestore: each order: %w", err))
	}
	return nil
}

// Get returns the committed value of order id in partition p. The returned
// slice belongs to the caller.
func (s *Store) Get(p int32, id []byte) (value []byte, ok bool, err error) {
	if err := checkPartition(p); err != nil {
		return nil, false, err
	}
	return s.get(appendOrderKey(nil, p, id))
}

// ChangelogOffset returns the next changelog offset to read for partition p,
// and false if the store holds no offset for p (nothing restored or
// committed, or the partition was dropped).
func (s *Store) ChangelogOffset(p int32) (next int64, ok bool, err error) {
	if err := checkPartition(p); err != nil {
		return 0, false, err
	}
	v, ok, err := s.get(metaOffsetKey(p))
	if err != nil || !ok {
		return 0, false, err
	}
	next, err = decodeOffset(v)
	return next, err == nil, err
}

// dropPartition deletes everything the store holds for partition p: order
// states, retention index entries and the changelog offset, in one batch.
// A later Restore of p starts from the changelog's log start. The processor
// keeps a revoked partition's data (a later reassignment restores only what
// it missed), so only tests drop partitions.
func (s *Store) dropPartition(p int32) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	if err := s.usable(); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := deletePartition(b, p); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return s.classify(fmt.Errorf("statestore: drop partition %d: %w", p, err))
	}
	return nil
}

func deletePartition(b *pebble.Batch, p int32) error {
	for _, bounds := range []func(int32) ([]byte, []byte){partitionBounds, indexBounds, dueIndexBounds, metaBounds} {
		lo, hi := bounds(p)
		if err := b.DeleteRange(lo, hi, nil); err != nil {
			return fmt.Errorf("statestore: delete range of partition %d: %w", p, err)
		}
	}
	return nil
}

// Metrics is a summary of the Pebble database's health.
type Metrics struct {
	// DiskSpaceUsage is the bytes of all live files (tables, WAL, manifest).
	DiskSpaceUsage uint64
	// MemTableBytes is the size of the memtables.
	MemTableBytes uint64
	// Compactions is the number of compactions completed since Open;
	// CompactionsInProgress the number running; CompactionDebtBytes an
	// estimate of the bytes compaction still has to rewrite.
	Compactions           int64
	CompactionsInProgress int64
	CompactionDebtBytes   uint64
	// Flushes is the number of memtable flushes completed since Open, and
	// FlushedBytes the bytes of tables they wrote; CompactedBytes is the
	// bytes of tables compactions wrote. With the bytes the processor
	// writes, they give the store's write amplification.
	Flushes                      int64
	FlushedBytes, CompactedBytes uint64
	// ReadAmp is the read amplification (sublevels in L0 plus non-empty
	// levels).
	ReadAmp int
	// WriteStalls counts the times Pebble delayed writes since Open, and
	// WriteStallTime their total duration (ended stalls only).
	WriteStalls    int64
	WriteStallTime time.Duration
	// BlockCacheHits and BlockCacheMisses count block cache lookups.
	BlockCacheHits, BlockCacheMisses int64
	// Pebble holds all of Pebble's metrics.
	Pebble *pebble.Metrics
}

// Metrics returns the database's metrics.
func (s *Store) Metrics() (Metrics, error) {
	if s.closed.Load() {
		return Metrics{}, ErrClosed
	}
	m := s.db.Metrics()
	var flushed, compacted uint64
	for i := range m.Levels {
		flushed += m.Levels[i].TableBytesFlushed + m.Levels[i].BlobBytesFlushed
		compacted += m.Levels[i].TableBytesCompacted + m.Levels[i].BlobBytesCompacted
	}
	return Metrics{
		DiskSpaceUsage:        m.DiskSpaceUsage(),
		MemTableBytes:         m.MemTable.Size,
		Compactions:           m.Compact.Count,
		CompactionsInProgress: m.Compact.NumInProgress,
		CompactionDebtBytes:   m.Compact.EstimatedDebt,
		Flushes:               m.Flush.Count,
		FlushedBytes:          flushed,
		CompactedBytes:        compacted,
		ReadAmp:               m.ReadAmp(),
		WriteStalls:           s.stalls.count.Load(),
		WriteStallTime:        time.Duration(s.stalls.nanos.Load()),
		BlockCacheHits:        m.BlockCache.Hits,
		BlockCacheMisses:      m.BlockCache.Misses,
		Pebble:                m,
	}, nil
}

// inUse reports whether an error of pebble.Open is its lock file being held:
// by another process (fcntl refuses the lock with EAGAIN, or EACCES on some
// systems; an EACCES of a path is a permission problem instead), or by this
// one (Pebble's own check, an untyped error).
func inUse(err error) bool {
	var pathErr *fs.PathError
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) && !errors.As(err, &pathErr) ||
		strings.Contains(err.Error(), "lock held by current process")
}
