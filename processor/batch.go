package processor

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/statestore"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// overlay holds a batch's entries by partition and order ID: a map per
// partition keyed by the ID alone, which hashes faster than a key of both,
// and lets commitStore write a partition's orders in ID order without
// comparing partitions.
type overlay map[int32]map[string]*entry

// of returns partition part's map, made with room for size orders if the
// overlay has none yet.
func (o overlay) of(part int32, size int) map[string]*entry {
	m := o[part]
	if m == nil {
		m = make(map[string]*entry, size)
		o[part] = m
	}
	return m
}

// entry is an order's state as the current batch leaves it.
type entry struct {
	state  topology.State // read only (topology.Apply's copy-on-write contract)
	exists bool           // false: the order does not exist (or was deleted)
	value  []byte         // the encoded state this batch wrote to the changelog, while dirty (slab memory)
	dirty  bool           // written by this batch
}

// current returns the entry's state for topology.Apply: nil when the order
// does not exist.
func (e *entry) current() *topology.State {
	if !e.exists {
		return nil
	}
	return &e.state
}

// batch is the work of one transaction (or one at_least_once commit): the
// overlay of order states it changed (read-your-writes for later events of
// the same order), the changelog offsets its records got, and its counts,
// which reach the processor's stats only once the batch is committed.
type batch struct {
	overlay overlay
	warm    overlay // the last committed batch's overlay (read only)
	// The partition being processed (setPartition), and its maps in
	// overlay and warm.
	part      int32
	cur, prev map[string]*entry
	records   int // input records in the batch
	abort     bool
	misrouted bool // a record's key hashes to another partition (layout.go)
	stored    bool // committed to Kafka and written to the store

	counts counts
	limits recordLimits // the output topics' record size limits

	ev      topology.Event   // the event being processed, reused
	out     topology.Outcome // its outcome, reused
	known   *knownOrders     // the orders of the partition being processed
	mem     *outputMemory    // the thread's memory for output records and values
	entries []entry          // room for the overlay's next entries (newEntry)
	// closedAt is the ClosedAt of the orders the batch closes at one
	// processing time: states are immutable, so they share it.
	closedAt *time.Time
	// input holds copies of the batch's input values, which its decoded
	// events' strings point into (avro's DecodeEventShared), and slab the
	// event IDs and sequences of the states it builds
	// (topology.ApplyWith): one allocation per many events for both. The
	// batch's states point into them, so they stay reachable while the
	// batch's overlay and then the next batch's warm states do; the next
	// batch copies a warm state it takes over (own), so that no memory
	// lives longer. Neither is ever reused.
	input []byte
	slab  topology.Slab

	// next is the next input offset of each partition the batch read
	// (at_least_once commits them once the batch is stored).
	next map[int32]kgo.EpochOffset

	// pending are the records built and not yet handed to the client
	// (produce, flush).
	pending   []*kgo.Record
	produced  sync.WaitGroup // the batch's records the client has not answered yet
	mu        sync.Mutex
	offsets   map[int32]int64 // next changelog offset per partition
	err       error           // first produce error
	changelog string
	// The promises of the batch's changelog records and of its other
	// records, bound once (a method value allocates).
	changelogPromise, outputPromise func(*kgo.Record, error)
}

// newBatch returns an empty batch, which reads the states of warm (the
// last batch's overlay, or nil) before the store's.
func newBatch(changelog string, mem *outputMemory, leaves []string, warm overlay) *batch {
	b := &batch{
		mem:       mem,
		overlay:   make(overlay),
		warm:      warm,
		offsets:   make(map[int32]int64),
		next:      make(map[int32]kgo.EpochOffset),
		changelog: changelog,
		counts:    newCounts(leaves),
	}
	b.changelogPromise, b.outputPromise = b.onChangelog, b.onOutput
	return b
}

// setPartition makes part the partition whose records the batch processes
// next; known holds the orders it may have.
func (b *batch) setPartition(part int32, known *knownOrders) {
	b.part, b.known = part, known
	// Room for as many orders as the last batch had: a map grown one
	// doubling at a time rehashes all its entries at each.
	b.cur, b.prev = b.overlay.of(part, len(b.warm[part])), b.warm[part]
}

// entryChunk is how many entries a chunk holds: 128 entries stay under
// 32 KiB, above which an allocation takes the runtime's slower path for
// large objects.
const entryChunk = 128

// newEntry returns a zeroed entry for the overlay. Entries come from chunks,
// one allocation per entryChunk orders: a chunk lives while the batch's
// overlay, or the next batch's warm states, point into it.
func (b *batch) newEntry() *entry {
	if len(b.entries) == 0 {
		b.entries = make([]entry, entryChunk)
	}
	e := &b.entries[0]
	b.entries = b.entries[1:]
	return e
}

// inputChunk is the size of the chunks of batch.input: under 32 KiB, the
// runtime's limit for small objects (a chunk of 32 KiB or more takes the
// slower path for large ones, which goes to the heap's central lock and
// zeroes the memory, on every chunk).
const inputChunk = 16 << 10

// keepInput returns a copy of an input record's value, in the batch's
// memory.
func (b *batch) keepInput(v []byte) []byte {
	if len(v) > inputChunk/8 {
		return bytes.Clone(v)
	}
	if cap(b.input)-len(b.input) < len(v) {
		b.input = make([]byte, 0, inputChunk)
	}
	b.input = append(b.input, v...)
	return b.input[len(b.input)-len(v) : len(b.input) : len(b.input)]
}

// own makes st, a state of the last batch, independent of that batch's
// memory (see batch.input): it copies st's event IDs into one new
// allocation, and its sequence. Without it an order touched batch after
// batch would keep every one of those batches' memory reachable.
func own(st *topology.State) {
	if ids := st.RecentEventIDs; len(ids) > 0 {
		n := 0
		for _, id := range ids {
			n += len(id)
		}
		buf := make([]byte, 0, n)
		owned := make([]string, len(ids))
		for i, id := range ids {
			if id != "" {
				buf = append(buf, id...)
				owned[i] = unsafe.String(&buf[len(buf)-len(id)], len(id))
			}
		}
		st.RecentEventIDs = owned
	}
	if st.LastSequence != nil {
		seq := *st.LastSequence
		st.LastSequence = &seq
	}
}

// closedAtPtr returns a pointer to now for the ClosedAt of an order the
// batch closes, shared by every order closed at that time: only a new time
// allocates (taking the address of now itself would move the parameter to
// the heap on every call, one allocation per closed order).
func (b *batch) closedAtPtr(now time.Time) *time.Time {
	if b.closedAt == nil || !b.closedAt.Equal(now) {
		at := now
		b.closedAt = &at
	}
	return b.closedAt
}

// outputMemory is a thread's memory for the records a batch produces and
// their values, handed out from slabs and reused batch after batch: a batch
// produces two records per event, and allocating each record and value
// would put four allocations per event, and the garbage collector's work
// for them, on the loop's path. A committed batch's records and values are
// no longer referenced once its store batch is written (the client is done
// with them, the store copied the states), so recycle then makes its slabs
// the next batch's; after an abort or a failure the slabs are left to the
// garbage collector (drop).
type outputMemory struct {
	recs slab[kgo.Record]
	hdrs slab[kgo.RecordHeader]
	vals slab[byte]
	// hist remembers the encodings of the History maps of the states the
	// thread encodes (EncodeStateCached): the states Apply builds never
	// change their maps.
	hist avro.HistoryCache
}

const (
	recordSlab = 256
	valueSlab  = 64 << 10
	minValue   = 1 << 10 // a value slab with less room left is replaced
)

func newOutputMemory() *outputMemory {
	return &outputMemory{recs: slab[kgo.Record]{size: recordSlab}, hdrs: slab[kgo.RecordHeader]{size: recordSlab}, vals: slab[byte]{size: valueSlab}}
}

// record returns a copy of r, for the client to produce.
func (m *outputMemory) record(r kgo.Record) *kgo.Record {
	p := &m.recs.take(1)[0]
	*p = r
	return p
}

// header returns a one-element header slice.
func (m *outputMemory) header(key string, value []byte) []kgo.RecordHeader {
	h := m.hdrs.take(1)
	h[0] = kgo.RecordHeader{Key: key, Value: value}
	return h
}

// space returns an empty slice to append one value to; keep hands the
// result back.
func (m *outputMemory) space() []byte {
	if cap(m.vals.cur) < minValue {
		m.vals.next()
	}
	return m.vals.cur[:0]
}

// keep takes back a value appended to the slice space returned: the value's
// bytes are used up from the slab, unless appending outgrew it (the value
// then has memory of its own). The result's capacity is its length, so
// appending to it cannot touch the next value.
func (m *outputMemory) keep(v []byte) []byte {
	if len(v) > 0 && cap(m.vals.cur) > 0 && &v[0] == &m.vals.cur[:1][0] {
		m.vals.cur = m.vals.cur[len(v):len(v)]
	}
	return v[:len(v):len(v)]
}

// recycle makes every slab handed out free for reuse.
func (m *outputMemory) recycle() {
	m.recs.recycle()
	m.hdrs.recycle()
	m.vals.recycle()
}

// drop forgets the slabs handed out: the garbage collector frees them once
// nothing references them.
func (m *outputMemory) drop() {
	m.recs.drop()
	m.hdrs.drop()
	m.vals.drop()
}

// slab hands out elements from chunks of size.
type slab[T any] struct {
	size int
	cur  []T   // unused part of the current chunk (length 0 for bytes)
	used [][]T // chunks handed out since the last recycle or drop
	free [][]T // chunks to hand out (not zeroed: take zeroes; byte chunks are appended to)
}

// next starts a new chunk: a free one, or a new one.
func (s *slab[T]) next() {
	var c []T
	if n := len(s.free); n > 0 {
		c, s.free = s.free[n-1], s.free[:n-1]
	} else {
		c = make([]T, s.size)
	}
	s.used = append(s.used, c)
	s.cur = c
	if _, bytes := any(c).([]byte); bytes {
		s.cur = c[:0] // values are appended
	}
}

// take returns n (<= size) elements, holding whatever they last held: the
// caller overwrites them whole. Nothing zeroes a recycled chunk: its memory
// has left the CPU's caches by the time it is reused, and zeroing it then
// (or in take) and filling it after would fetch it twice, for no gain: no
// reader looks at a field the caller has not written.
func (s *slab[T]) take(n int) []T {
	if len(s.cur) < n {
		s.next()
	}
	t := s.cur[:n:n]
	s.cur = s.cur[n:]
	return t
}

// recycle makes the chunks handed out free for reuse. Their elements keep
// what they point to until take hands them out again: at most the memory
// of one batch (its records' keys and values) stays reachable a batch
// longer.
func (s *slab[T]) recycle() {
	s.free = append(s.free, s.used...)
	s.drop()
}

func (s *slab[T]) drop() {
	clear(s.used)
	s.used, s.cur = s.used[:0], nil
}

// producer takes the records a batch produces: the thread's *kgo.Client.
// It is an interface only so that BenchmarkProcess can measure the
// per-record work without a broker; every test runs the real client.
type producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// produce queues r for the client: flush hands it over.
func (b *batch) produce(r *kgo.Record) {
	b.pending = append(b.pending, r)
}

// flush hands the queued records to the client, in the order they were
// queued; the batch's promises get their outcomes.
func (b *batch) flush(cl producer) {
	b.produced.Add(len(b.pending))
	for _, r := range b.pending {
		promise := b.outputPromise
		if r.Topic == b.changelog {
			promise = b.changelogPromise
		}
		cl.Produce(context.Background(), r, promise)
	}
	clear(b.pending)
	b.pending = b.pending[:0]
}

// waitProduced waits until the client has answered every record of the
// batch, or ctx ends.
func (b *batch) waitProduced(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.produced.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onChangelog is the promise of a changelog record: it keeps the
// partition's next changelog offset.
func (b *batch) onChangelog(r *kgo.Record, err error) {
	defer b.produced.Done()
	if err != nil {
		b.fail(r, err)
		return
	}
	b.mu.Lock()
	if r.Offset+1 > b.offsets[r.Partition] {
		b.offsets[r.Partition] = r.Offset + 1
	}
	b.mu.Unlock()
}

// onOutput is the promise of every other record: on success there is
// nothing to keep, so it takes no lock (half the batch's records).
func (b *batch) onOutput(r *kgo.Record, err error) {
	if err != nil {
		b.fail(r, err)
	}
	b.produced.Done()
}

// fail keeps the first produce error.
func (b *batch) fail(r *kgo.Record, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = fmt.Errorf("producing to %s: %w", r.Topic, err)
	}
}

func (b *batch) produceErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// commitStore writes the batch's states and changelog offsets to the store in
// one Pebble batch. Call it only after Kafka has the batch's records.
func (b *batch) commitStore(s *statestore.Store) error {
	// In key order: Pebble inserts a run of ascending keys into its
	// memtable faster than keys in map order.
	parts := slices.Sorted(maps.Keys(b.overlay))
	type write struct {
		id string
		e  *entry
	}
	var dirty []write
	sb := s.NewWriteBatch() // each order once: the batch needs no reads
	for _, part := range parts {
		dirty = dirty[:0]
		for id, e := range b.overlay[part] {
			if e.dirty {
				dirty = append(dirty, write{id, e})
			}
		}
		slices.SortFunc(dirty, func(x, y write) int { return strings.Compare(x.id, y.id) })
		for _, w := range dirty {
			var err error
			if !w.e.exists {
				err = sb.Delete(part, []byte(w.id))
			} else {
				// The store's ClosedAt would read this off the value.
				var at int64
				closedAt := w.e.state.ClosedAt
				if closedAt != nil {
					at = closedAt.UnixMilli()
				}
				err = sb.PutClosed(part, []byte(w.id), w.e.value, at, closedAt != nil)
			}
			// The batch copied the value; its slab is recycled below (and
			// the next batch's warm states must not point into it).
			w.e.value = nil
			if err != nil {
				sb.Discard()
				return err
			}
		}
	}
	b.mu.Lock()
	for p, off := range b.offsets {
		if err := sb.SetChangelogOffset(p, off); err != nil {
			b.mu.Unlock()
			sb.Discard()
			return err
		}
	}
	b.mu.Unlock()
	if err := sb.Commit(); err != nil {
		return err
	}
	b.stored = true
	b.mem.recycle() // the client is done with the batch's records
	return nil
}
