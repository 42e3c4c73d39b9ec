package statestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TailOptions configures a Tailer.
type TailOptions struct {
	// Topic is the changelog topic. Required.
	Topic string
	// ClientOpts configure the Tailer's one franz-go client: connection
	// options only, as RestoreOptions.ClientOpts (ErrClientOptions).
	ClientOpts []kgo.Opt
	// BatchRecords and BatchBytes bound a Pebble batch, as in
	// RestoreOptions. Defaults: DefaultRestoreBatchRecords,
	// DefaultRestoreBatchBytes.
	BatchRecords int
	BatchBytes   int
	// LagInterval is how often the Tailer lists the changelog's last
	// stable offsets to know each partition's lag. Default 1 s.
	LagInterval time.Duration

	filter func(r *kgo.Record) bool // as RestoreOptions.filter
}

// Tailer keeps partitions of a store level with their changelog partitions
// as the changelog grows: a standby copy. It reads every partition it
// follows with one client, outside any consumer group, read_committed (a
// record of an open or aborted transaction is never applied), and writes
// each fetch to Pebble as Restore writes it (the same code): the records
// and the offset reached in one batch. A partition is added with Add, from
// its stored offset (wiped first, as Restore does, if the local copy cannot
// be trusted), and removed with Remove, after which the Tailer writes
// nothing more of it; Restore may then bring it the rest of the way.
//
// The Tailer never produces: its client is refused any transactional ID.
// Make it with Store.NewTailer, run it with Run; Add and Remove may be
// called from other goroutines before and while Run runs.
type Tailer struct {
	s   *Store
	o   TailOptions
	cl  *kgo.Client
	adm *kadm.Client

	// mu is held while a fetch is applied and by Add and Remove: a
	// partition removed is never written again.
	mu    sync.Mutex
	parts map[int32]*tailPart
	// lagMu guards the lags of parts, read by Lag without waiting for a
	// fetch to be applied.
	lagMu sync.Mutex
	lags  map[int32]TailLag
}

type tailPart struct {
	a   *applier
	pos int64 // the next offset to read; stored with every commit
}

// TailLag is how far a followed partition is behind its changelog.
type TailLag struct {
	// Records is the number of offsets between the position reached and
	// the changelog's last stable offset when last listed: an upper bound
	// on the records the copy lacks (markers and aborted records take
	// offsets too). -1 before the first listing.
	Records int64
	// Current is the last time the copy was known level with the
	// changelog's last stable offset (zero: not yet).
	Current time.Time
	// Applied is the last time the Tailer applied records of the
	// partition (zero: none yet).
	Applied time.Time
	// Position is the next changelog offset the copy reads.
	Position int64
}

// NewTailer returns a Tailer writing to s. It connects to nothing until
// Run or Add.
func (s *Store) NewTailer(o TailOptions) (*Tailer, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if o.Topic == "" {
		return nil, errors.New("statestore: tailer: Topic is required")
	}
	if o.BatchRecords <= 0 {
		o.BatchRecords = DefaultRestoreBatchRecords
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultRestoreBatchBytes
	}
	if o.LagInterval <= 0 {
		o.LagInterval = time.Second
	}
	cl, err := newChangelogClient(o.ClientOpts)
	if err != nil {
		return nil, err
	}
	return &Tailer{s: s, o: o, cl: cl, adm: kadm.NewClient(cl), parts: map[int32]*tailPart{}, lags: map[int32]TailLag{}}, nil
}

// Add starts following partition p from its stored offset. Following a
// partition already followed does nothing. The caller must not write p
// otherwise (batches, Restore) until it has removed it.
func (t *Tailer) Add(ctx context.Context, p int32) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.parts[p]; ok {
		return nil
	}
	logStart, _, hwm, err := bounds(ctx, t.cl, t.o.Topic, p)
	if err != nil {
		return fmt.Errorf("statestore: tailer: %w", err)
	}
	from, _, err := t.s.start(p, t.o.Topic, logStart, hwm)
	if err != nil {
		return t.s.classify(fmt.Errorf("statestore: tailer: %w", err))
	}
	t.parts[p] = &tailPart{a: newApplier(t.s, p, t.o.filter), pos: from}
	t.lagMu.Lock()
	t.lags[p] = TailLag{Records: -1, Position: from}
	t.lagMu.Unlock()
	t.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{t.o.Topic: {p: kgo.NewOffset().At(from)}})
	return nil
}

// Remove stops following partition p. Once it returns, the Tailer writes
// nothing more of p; its data and offset stay in the store. Removing a
// partition not followed does nothing.
func (t *Tailer) Remove(p int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tp, ok := t.parts[p]
	if !ok {
		return
	}
	t.cl.RemoveConsumePartitions(map[string][]int32{t.o.Topic: {p}})
	tp.a.close()
	delete(t.parts, p)
	t.lagMu.Lock()
	delete(t.lags, p)
	t.lagMu.Unlock()
}

// Partitions returns the partitions followed, in order.
func (t *Tailer) Partitions() []int32 {
	t.lagMu.Lock()
	defer t.lagMu.Unlock()
	out := make([]int32, 0, len(t.lags))
	for p := range t.lags {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Lag returns how far followed partition p is behind; false if p is not
// followed.
func (t *Tailer) Lag(p int32) (TailLag, bool) {
	t.lagMu.Lock()
	defer t.lagMu.Unlock()
	l, ok := t.lags[p]
	return l, ok
}

// Run follows the partitions added until ctx is done (nil) or the store
// fails (its error); it closes the client when it returns. A fetch error
// of one partition (its log truncated past the position, say) makes the
// Tailer start that partition again from its stored offset, as Add does.
func (t *Tailer) Run(ctx context.Context) error {
	defer t.cl.Close()
	defer func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		for p, tp := range t.parts {
			tp.a.close()
			delete(t.parts, p)
		}
	}()
	listed := make(chan struct{})
	lctx, stop := context.WithCancel(ctx)
	go func() {
		defer close(listed)
		t.listLags(lctx)
	}()
	defer func() { stop(); <-listed }()
	for {
		fs := t.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var again []int32
		fs.EachError(func(topic string, p int32, err error) {
			if topic == t.o.Topic && !errors.Is(err, context.Canceled) {
				t.s.log.Warn("tailing changelog partition: fetch failed; starting it again", "topic", topic, "partition", p, "err", err)
				again = append(again, p)
			}
		})
		if err := t.apply(fs); err != nil {
			return err
		}
		for _, p := range again {
			t.Remove(p)
			if err := t.Add(ctx, p); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if t.s.usable() != nil {
					return err
				}
				t.s.log.Warn("tailing changelog partition: cannot start it again", "topic", t.o.Topic, "partition", p, "err", err)
			}
		}
	}
}

// apply writes the records of a fetch, partition by partition, each
// partition's in batches that store the offset reached.
func (t *Tailer) apply(fs kgo.Fetches) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ferr error
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		tp := t.parts[fp.Partition]
		if ferr != nil || fp.Topic != t.o.Topic || tp == nil || len(fp.Records) == 0 {
			return
		}
		start, records := tp.pos, tp.a.records
		for _, rec := range fp.Records {
			if rec.Offset < tp.pos {
				continue // fetched before a Remove and Add, or read twice
			}
			if !rec.Attrs.IsControl() {
				tp.a.add(rec)
			}
			tp.pos = rec.Offset + 1
			if tp.a.full(t.o.BatchRecords, t.o.BatchBytes) {
				if ferr = tp.a.commit(tp.pos); ferr != nil {
					return
				}
			}
		}
		if tp.pos == start {
			return
		}
		if ferr = tp.a.commit(tp.pos); ferr != nil {
			return
		}
		now := time.Now()
		t.lagMu.Lock()
		l := t.lags[fp.Partition]
		l.Position = tp.pos
		if tp.a.records > records {
			l.Applied = now
		}
		if fp.LastStableOffset > 0 {
			l.Records = max(fp.LastStableOffset-tp.pos, 0)
			if l.Records == 0 {
				l.Current = now
			}
		}
		t.lags[fp.Partition] = l
		t.lagMu.Unlock()
	})
	if ferr != nil {
		return t.s.classify(fmt.Errorf("statestore: tailer: %w", ferr))
	}
	return nil
}

// listLags lists the changelog's last stable offsets every LagInterval and
// updates the lags of the partitions followed.
func (t *Tailer) listLags(ctx context.Context) {
	tick := time.NewTicker(t.o.LagInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if len(t.Partitions()) == 0 {
			continue
		}
		asOf := time.Now()
		l, err := t.adm.ListCommittedOffsets(ctx, t.o.Topic)
		if err != nil {
			continue
		}
		t.lagMu.Lock()
		for p, lag := range t.lags {
			lo, ok := l.Lookup(t.o.Topic, p)
			if !ok || lo.Err != nil {
				continue
			}
			lag.Records = max(lo.Offset-lag.Position, 0)
			if lag.Records == 0 {
				lag.Current = asOf
			}
			t.lags[p] = lag
		}
		t.lagMu.Unlock()
	}
}
