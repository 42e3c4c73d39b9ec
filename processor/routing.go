package processor

import (
	"sync"
	"sync/atomic"

	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Producers choose an order's input partition by hashing its id, and the
// order's state lives in that partition: queries (GET /orders/{id}) and
// repartitioning must hash the id the same way. Java clients, Kafka
// Streams and franz-go hash with murmur2; librdkafka clients (kcat,
// confluent-kafka-*) with CRC32 by default. Processing does not care (it
// takes records where they are), so the processor finds out from the data:
// for every input record it checks whether the partitioner in use puts the
// key in the record's partition (one hash, no allocation) and, only when
// it does not, whether the other one does. Committed batches add their
// tallies to the processor's; the partitioner in use is Config.Partitioner
// when set, else the one that placed most records so far (murmur2 until a
// batch shows otherwise). Queries ask the partitioner in use first and the
// other second (Processor.Partitions), so a wrong guess costs a second
// lookup, never a wrong "unknown order".

// routing is a processor's view of how producers partition the input.
type routing struct {
	configured partitioner.Name // Config.Partitioner (None: detect)
	inUse      atomic.Uint32    // a partitioner.Name

	mu            sync.Mutex
	placed        [3]int64 // committed input records by the partitioner that placed them (None: neither)
	mismatched    int64    // committed input records the partitioner in use (then) did not place
	logged        bool     // the producers' partitioner was logged
	warned        bool     // a contradiction of Config.Partitioner was logged
	warnedNeither bool     // records placed by neither partitioner were logged
	verdict       partitioner.Name
}

func newRouting(configured partitioner.Name) *routing {
	r := &routing{configured: configured}
	if configured == partitioner.None {
		configured = partitioner.Murmur2
	}
	r.inUse.Store(uint32(configured))
	return r
}

// partitioner returns the partitioner in use.
func (r *routing) partitioner() partitioner.Name { return partitioner.Name(r.inUse.Load()) }

// place returns which partitioner put r where it is, in a topic that had
// n partitions (None: neither, or a record without a key). It is on the
// per-record path: one hash when the partitioner in use placed it.
func (rt *routing) place(r *kgo.Record, n int) partitioner.Name {
	if len(r.Key) == 0 {
		return partitioner.None
	}
	return partitioner.Match(rt.partitioner(), r.Key, r.Partition, n)
}

// add adds a committed batch's tally and returns what to log, if anything:
// the first time the data shows a partitioner (the producers'), or
// contradicts Config.Partitioner.
func (rt *routing) add(c *counts) (msg string, args []any, warn bool) {
	if c.placed == [3]int64{} {
		return "", nil, false
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for i, n := range c.placed {
		rt.placed[i] += n
	}
	rt.mismatched += c.mismatched
	m, crc := rt.placed[partitioner.Murmur2], rt.placed[partitioner.CRC32]
	shown := partitioner.Murmur2
	if crc > m {
		shown = partitioner.CRC32
	}
	rt.verdict = shown
	counts := []any{"murmur2_records", m, "crc32_records", crc, "neither_records", rt.placed[partitioner.None]}
	if neither := rt.placed[partitioner.None]; neither > m+crc && !rt.warnedNeither {
		rt.warnedNeither = true
		return "most input records are where neither murmur2 nor crc32 puts their keys: order queries cannot find their orders " +
			"(producers must partition by the order id with Kafka's default partitioner or librdkafka's consistent_random)", counts, true
	}
	if rt.configured == partitioner.None {
		if rt.partitioner() != shown {
			rt.inUse.Store(uint32(shown))
		}
		if !rt.logged && (shown != partitioner.Murmur2 || m > 0) {
			rt.logged = true
			return "the input's producers appear to partition by " + shown.String() + "; order queries use it (set --partitioner to fix the choice)",
				append([]any{"partitioner", shown.String()}, counts...), shown != partitioner.Murmur2
		}
		return "", nil, false
	}
	if !rt.warned && shown != rt.configured && rt.placed[shown] > 0 {
		rt.warned = true
		return "the input's records are where " + shown.String() + " puts their keys, not the configured partitioner " + rt.configured.String() +
				": check --partitioner and the producers' partitioner (order queries still find every order, with a second lookup)",
			append([]any{"configured", rt.configured.String(), "shown", shown.String()}, counts...), true
	}
	return "", nil, false
}

// snapshot returns the committed tally and the partitioner the data shows
// (None: no keyed record yet).
func (rt *routing) snapshot() (placed [3]int64, mismatched int64, shown partitioner.Name) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.placed, rt.mismatched, rt.verdict
}

// Partitioner returns the partitioner the processor uses for order
// queries: Config.Partitioner if set, else the one the input's records
// show so far (murmur2 until they show another).
func (p *Processor) Partitioner() partitioner.Name { return p.routing.partitioner() }

// Partitions returns the input partitions an order's events can be in, in
// a topic of n partitions: where the partitioner in use puts its id, then,
// if it differs, where the other partitioner does. A query that does not
// find the order in the first asks the second before answering "unknown".
func (p *Processor) Partitions(orderID string, n int) []int32 {
	use := p.Partitioner()
	key := []byte(orderID)
	first := use.Partition(key, n)
	if first < 0 {
		return nil
	}
	if second := use.Other().Partition(key, n); second != first {
		return []int32{first, second}
	}
	return []int32{first}
}
