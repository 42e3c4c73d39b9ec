package processor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/statestore"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCountsMoves checks that a batch's moves, counted by leaf index, reach
// the stats by leaf name, with "" as the source of a new order, add up over
// batches, and that released counts go back zeroed.
func TestCountsMoves(t *testing.T) {
	leaves := []string{"a", "b", "c"}
	var st stats
	for range 2 {
		c := newCounts(leaves)
		c.moved(-1, 0)
		c.moved(0, 2)
		c.moved(0, 2)
		c.moved(2, 1)
		st.add(&c)
		m := c.moves
		c.release()
		// Back in the pool for the next batch: zeroed.
		if len(m.touched) != 0 || slices.ContainsFunc(m.n, func(n int64) bool { return n != 0 }) {
			t.Fatalf("released move counts not zeroed: %v, touched %v", m.n, m.touched)
		}
	}
	want := map[move]int64{{"", "a"}: 2, {"a", "c"}: 4, {"c", "b"}: 2}
	if got := st.movesSnapshot(); !maps.Equal(got, want) {
		t.Fatalf("moves %v, want %v", got, want)
	}
	if got := st.snapshot().Transitions; got != 8 {
		t.Fatalf("transitions %d, want 8", got)
	}
}

// recordingProducer answers every record at once and remembers, for each,
// its topic, key and value and how many input records the batch had
// processed when the record was handed over.
type recordingProducer struct {
	b     *batch
	calls []producedCall
	next  map[string]int64
}

type producedCall struct {
	topic, key, value string
	processed         int
}

func (rp *recordingProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	rp.calls = append(rp.calls, producedCall{r.Topic, string(r.Key), string(r.Value), rp.b.records})
	r.Offset = rp.next[r.Topic]
	rp.next[r.Topic]++
	promise(r, nil)
}

// TestProcessRecordsInChunks checks that processRecords hands the client
// the records it builds a chunk of produceChunk input records at a time:
// the same records, in the same order, as handing each over right after
// its input record, and every one of them answered.
func TestProcessRecordsInChunks(t *testing.T) {
	var recs []*kgo.Record
	for i, it := range workload.Generate(workload.Options{Orders: 80, Seed: 3}) {
		recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(it.Key), Offset: int64(i), Timestamp: time.UnixMilli(1_700_000_000_000)})
	}
	if len(recs) < 3*produceChunk {
		t.Fatalf("only %d records: too few for three chunks", len(recs))
	}
	now := time.UnixMilli(1_700_000_100_000)
	// run processes recs into a new store; perRecord hands each record's
	// outputs over before the next record is processed.
	run := func(perRecord bool) []producedCall {
		p := newStoreProcessor(t, AtLeastOnce)
		var err error
		for i, it := range workload.Generate(workload.Options{Orders: 80, Seed: 3}) {
			v := it.Malformed
			if v == nil {
				if v, err = p.codec.EncodeEvent(nil, &it.Event); err != nil {
					t.Fatal(err)
				}
			}
			recs[i].Value = v
		}
		b := newBatch(p.changelog, newOutputMemory(), p.leaves, nil)
		b.setPartition(0, newKnownOrders(0), nil)
		rp := &recordingProducer{b: b, next: map[string]int64{}}
		if perRecord {
			for _, r := range recs {
				p.process(b, r, now)
				b.flush(rp)
			}
		} else {
			p.processRecords(rp, b, recs, now)
		}
		if len(b.pending) != 0 {
			t.Errorf("%d records left unflushed", len(b.pending))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.waitProduced(ctx); err != nil {
			t.Errorf("waiting for the batch's records: %v", err)
		}
		if err := b.produceErr(); err != nil {
			t.Error(err)
		}
		return rp.calls
	}
	want, got := run(true), run(false)
	if len(got) != len(want) {
		t.Fatalf("%d records produced, want %d", len(got), len(want))
	}
	handovers := map[int]bool{}
	for i := range got {
		if g, w := got[i], want[i]; g.topic != w.topic || g.key != w.key || g.value != w.value {
			t.Fatalf("record %d: %s/%s, want %s/%s (or its value differs)", i, g.topic, g.key, w.topic, w.key)
		}
		n := got[i].processed
		if n%produceChunk != 0 && n != len(recs) {
			t.Fatalf("record %d handed over after %d input records: not at a chunk's end", i, n)
		}
		handovers[n] = true
	}
	if wantN := (len(recs) + produceChunk - 1) / produceChunk; len(handovers) != wantN {
		t.Errorf("records handed over at %d points (%v), want %d", len(handovers), slices.Sorted(maps.Keys(handovers)), wantN)
	}
}

// instantProducer answers every record at once, with the next offset of
// its topic and partition, as a broker would. It stands in for the client
// in TestChangelogOffsets and BenchmarkProcess.
type instantProducer struct{ next map[string]map[int32]int64 }

func (ip *instantProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	parts := ip.next[r.Topic]
	if parts == nil {
		parts = make(map[int32]int64)
		ip.next[r.Topic] = parts
	}
	r.Offset = parts[r.Partition]
	parts[r.Partition]++
	promise(r, nil)
}

// TestChangelogOffsets checks the next changelog offset a batch keeps for
// each partition (commitStore writes it to the store, restore starts
// there): one past the last changelog record produced to the partition,
// over several flushes, with changelog records of two partitions and
// other records in between.
func TestChangelogOffsets(t *testing.T) {
	b := newBatch("changelog", newOutputMemory(), nil, nil)
	pp := &instantProducer{next: map[string]map[int32]int64{"changelog": {1: 40, 2: 7}}}
	rec := func(topic string, part int32) *kgo.Record { return &kgo.Record{Topic: topic, Partition: part} }
	for _, r := range []*kgo.Record{rec("changelog", 1), rec("status", 1), rec("changelog", 1), rec("changelog", 2), rec("rejections", 2), rec("changelog", 1)} {
		b.produce(r)
	}
	b.flush(pp)
	if want := map[int32]int64{1: 43, 2: 8}; !maps.Equal(b.offsets, want) {
		t.Fatalf("after one flush: offsets %v, want %v", b.offsets, want)
	}
	for _, r := range []*kgo.Record{rec("changelog", 2), rec("changelog", 2), rec("status", 2)} {
		b.produce(r)
	}
	b.flush(pp)
	b.flush(pp) // nothing queued
	if want := map[int32]int64{1: 43, 2: 10}; !maps.Equal(b.offsets, want) {
		t.Fatalf("after two flushes: offsets %v, want %v", b.offsets, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.waitProduced(ctx); err != nil {
		t.Fatalf("waiting for the batch's records: %v", err)
	}
}

// TestClosedAtPtr checks that the orders a batch closes at one processing
// time share one ClosedAt, that a new time gets its own, and that only a
// new time allocates (not every closed order: a batch closes many orders
// at one processing time).
func TestClosedAtPtr(t *testing.T) {
	var b batch
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	p0 := b.closedAtPtr(t0)
	if !p0.Equal(t0) {
		t.Fatalf("closedAtPtr(%v) = %v", t0, *p0)
	}
	if p := b.closedAtPtr(t0); p != p0 {
		t.Errorf("same time: got a new pointer")
	}
	t1 := t0.Add(time.Millisecond)
	p1 := b.closedAtPtr(t1)
	if p1 == p0 || !p1.Equal(t1) || !p0.Equal(t0) {
		t.Errorf("new time: got %v (first %v, now %v)", *p1, *p0, t0)
	}
	if n := testing.AllocsPerRun(100, func() { b.closedAtPtr(t1) }); n != 0 {
		t.Errorf("closedAtPtr at the same time allocates %v times a call, want 0", n)
	}
}

// TestProcessKeepsEachValueOnce checks that a batch's output memory holds
// each value it produces once: the bytes taken from the value slab for an
// accepted event are its changelog and status values, no more. A second
// encoding of the state (as a merge once left in process) costs the
// per-record path an encode and doubles the state's share of the memory.
func TestProcessKeepsEachValueOnce(t *testing.T) {
	p := newStoreProcessor(t, ExactlyOnce)
	var first workload.Item
	for _, it := range workload.Generate(workload.Options{Orders: 1, Seed: 1}) {
		if it.Malformed == nil {
			first = it
			break
		}
	}
	v, err := p.codec.EncodeEvent(nil, &first.Event)
	if err != nil {
		t.Fatal(err)
	}
	mem := newOutputMemory()
	b := newBatch(p.changelog, mem, p.leaves, nil)
	b.setPartition(0, newKnownOrders(0), nil)
	rp := &recordingProducer{b: b, next: map[string]int64{}}
	p.processRecords(rp, b, []*kgo.Record{{Topic: "events", Key: []byte(first.Key), Value: v, Timestamp: time.UnixMilli(1_700_000_000_000)}}, time.UnixMilli(1_700_000_100_000))
	if len(rp.calls) != 2 {
		t.Fatalf("%d records produced for %s, want a changelog and a status record: %+v", len(rp.calls), first.Event.Type, rp.calls)
	}
	want := 0
	for _, c := range rp.calls {
		want += len(c.value)
	}
	if got := valueSlab - cap(mem.vals.cur); len(mem.vals.used) != 1 || got != want {
		t.Fatalf("the value slab gave %d bytes (%d chunks) for outputs of %d bytes: a value was encoded twice", got, len(mem.vals.used), want)
	}
}

// newStoreProcessor returns a processor with guarantee g and an open store,
// for tests that call process and processRecords without a broker.
func newStoreProcessor(t *testing.T, g Guarantee) *Processor {
	t.Helper()
	p, err := New(Config{Brokers: []string{"unused:9092"}, StateDir: t.TempDir(), Guarantee: g})
	if err != nil {
		t.Fatal(err)
	}
	store, err := statestore.Open(statestore.Options{Dir: t.TempDir(), ClosedAt: p.closedAt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	p.store = store
	return p
}

// TestEntryDueFollowsState: an entry's first due time, which the check
// before every event and commitStore's index entry read instead of asking
// the machine, is the machine's NextDue of its state however the entry got
// it: a new order, a state read from the store, a warm state of the last
// batch, an accepted event, and a timer fired before an event.
func TestEntryDueFollowsState(t *testing.T) {
	p := newStoreProcessor(t, AtLeastOnce)
	if !p.timers {
		t.Fatal("the default machine has no timers")
	}
	m := p.cfg.Machine
	var recs []*kgo.Record
	encode := func(ev *topology.Event) []byte {
		v, err := p.codec.EncodeEvent(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var late *topology.Event // an order's first event, to repeat late
	for _, it := range workload.Generate(workload.Options{Orders: 60, Seed: 5}) {
		if it.Malformed != nil {
			continue
		}
		if late == nil && it.Event.Type == "place_order" {
			late = &topology.Event{}
			*late = it.Event
		}
		recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(it.Key), Value: encode(&it.Event)})
	}
	// An unpaid order whose next event comes 25h after it was placed: the
	// placed timer (24h) fires before the event.
	placed := *late
	placed.OrderID, placed.EventID = "late-order", "late-1"
	again := placed
	again.EventID, again.Type, again.OccurredAt = "late-2", "cancel_order", placed.OccurredAt.Add(25*time.Hour)
	lateRecs := []*kgo.Record{
		{Topic: "events", Key: []byte(placed.OrderID), Value: encode(&placed)},
		{Topic: "events", Key: []byte(again.OrderID), Value: encode(&again)},
	}

	check := func(b *batch, when string) (timed int) {
		for id, e := range b.overlay[0] {
			due, ok := topology.NextDue(m, e.current())
			if e.due != due || e.timed != ok {
				t.Errorf("%s: order %s in %q: entry due %d (timed %v), NextDue %d (%v)", when, id, e.state.State, e.due, e.timed, due, ok)
			}
			if ok {
				timed++
			}
		}
		return timed
	}
	now := time.Now()
	half := len(recs) / 2
	known := newKnownOrders(0)
	var warm overlay
	for i, part := range [][]*kgo.Record{recs[:half], recs[half:], recs[:half], lateRecs[:1], lateRecs[1:]} {
		b := newBatch(p.changelog, newOutputMemory(), p.leaves, warm)
		b.setPartition(0, known, nil)
		rp := &recordingProducer{b: b, next: map[string]int64{}}
		p.processRecords(rp, b, part, now)
		if err := b.commitStore(p.store); err != nil {
			t.Fatal(err)
		}
		if n := check(b, fmt.Sprintf("batch %d", i)); i == 0 && n == 0 {
			t.Fatalf("batch %d: no order with a pending timer: the test checks nothing", i)
		}
		if i == 1 {
			warm = nil // batch 2 reads the first half's orders from the store
		} else {
			warm = b.overlay
		}
		if i == 4 {
			e := b.overlay[0]["late-order"]
			if e == nil || e.state.State != "cancelled" || e.timed {
				t.Fatalf("late order: %+v, want cancelled by its timer, nothing pending", e)
			}
		}
	}
}
