package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Outcome kinds of an input record: what orderflow produces for it.
const (
	kindAccepted = iota + 1 // changelog + status
	kindRejected            // rejection
	kindDLQ                 // dead-letter copy
)

// outSizes are the records orderflow produces for one input record: their
// kind and value sizes. The ceiling produces records of these sizes.
type outSizes struct {
	kind      uint8
	fired     uint8 // timers the record's event revealed (each a transition, before it)
	changelog int32 // changelog value bytes (accepted only)
	output    int32 // status, rejection or DLQ value bytes
}

// encoded is a workload encoded as the processor reads it, with what
// orderflow will produce for each record. It is held in arenas, without
// pointers, so that keeping it while processors run in the same process
// adds nothing to the garbage collector's work.
type encoded struct {
	keys, values arena
	sizes        []outSizes
	expect       expectation
	// finalIDs and finals are every created order's id and final encoded
	// state, in id order.
	finalIDs, finals arena
	orders           int
	bytes            int64
}

func (e *encoded) len() int { return e.keys.len() }

// expectation is what a correct processor reports after the workload.
type expectation struct {
	events, transitions, rejections, dlq int64
}

// arena is a list of byte strings in one buffer.
type arena struct {
	buf []byte
	end []int // end[i] is where item i ends
}

func (a *arena) add(b []byte) {
	a.buf = append(a.buf, b...)
	a.end = append(a.end, len(a.buf))
}

func (a *arena) len() int { return len(a.end) }

// at returns item i; it shares the arena's memory.
func (a *arena) at(i int) []byte {
	start := 0
	if i > 0 {
		start = a.end[i-1]
	}
	return a.buf[start:a.end[i]:a.end[i]]
}

// encodeWorkload generates the workload of o, encodes it and runs it
// through the state machine the way the processor will (one order's events
// in order), to know the size of every output record and the final state of
// every order.
func encodeWorkload(o workload.Options, codec *avro.Codec, m *topology.Machine, now time.Time) (*encoded, error) {
	items := workload.Generate(o)
	e := &encoded{sizes: make([]outSizes, len(items))}
	states := make(map[string]*topology.State)
	finals := make(map[string][]byte)
	for i := range items {
		it := &items[i]
		v := it.Malformed
		if v == nil {
			var err error
			if v, err = codec.EncodeEvent(nil, &it.Event); err != nil {
				return nil, fmt.Errorf("encoding event %d: %w", i, err)
			}
		}
		e.keys.add([]byte(it.Key))
		e.values.add(v)
		e.bytes += int64(len(it.Key) + len(v))
		e.expect.events++
		sz, next, sv, err := outcome(codec, m, states[it.Key], v, it.Malformed != nil, now)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		e.sizes[i] = sz
		e.expect.transitions += int64(sz.fired)
		if next != nil {
			states[it.Key], finals[it.Key] = next, sv
		}
		switch sz.kind {
		case kindDLQ:
			e.expect.dlq++
		case kindRejected:
			e.expect.rejections++
		default:
			e.expect.transitions++
		}
	}
	ids := slices.Sorted(maps.Keys(finals))
	for _, id := range ids {
		e.finalIDs.add([]byte(id))
		e.finals.add(finals[id])
	}
	e.orders = len(ids)
	return e, nil
}

// outcome applies the encoded event v to the order's state as the
// processor does (decoded, times in ms) and returns the sizes of what the
// processor produces for it and, if accepted (or timers it revealed fired
// first), the order's next state, encoded too. The timers of the order due
// before the event fire first, as the processor fires them (the workload
// dates its events after any processor's clock, so none fires on the
// clock); their records' sizes are not counted.
func outcome(codec *avro.Codec, m *topology.Machine, state *topology.State, v []byte, malformed bool, now time.Time) (outSizes, *topology.State, []byte, error) {
	if malformed {
		return outSizes{kind: kindDLQ, output: int32(len(v))}, nil, nil, nil
	}
	var ev topology.Event
	if err := codec.DecodeEvent(v, &ev); err != nil {
		return outSizes{}, nil, nil, err
	}
	fired := uint8(0)
	if state != nil {
		before := state
		state = topology.FireDue(m, state, ev.OccurredAt, false, func(*topology.Timer, *topology.Outcome) { fired++ })
		if state != before && state.ClosedAt == nil && m.IsTerminal(state.State) {
			fs := *state
			closed := now
			fs.ClosedAt = &closed
			state = &fs
		}
	}
	out := topology.Apply(m, state, &ev)
	if !out.Accepted {
		rj := avro.RejectionFromOutcome(&ev, &out, now)
		rv, err := codec.EncodeRejection(nil, &rj)
		sz := outSizes{kind: kindRejected, fired: fired, output: int32(len(rv))}
		if err != nil || fired == 0 {
			return sz, nil, nil, err
		}
		sv, err := codec.EncodeState(nil, state)
		return sz, state, sv, err
	}
	next := out.Next
	if next.ClosedAt == nil && m.IsTerminal(next.State) {
		closed := now
		next.ClosedAt = &closed
	}
	sv, err := codec.EncodeState(nil, &next)
	if err != nil {
		return outSizes{}, nil, nil, err
	}
	sc := avro.StatusChangeFromOutcome(&ev, &out, now)
	cv, err := codec.EncodeStatusChange(nil, &sc)
	return outSizes{kind: kindAccepted, fired: fired, changelog: int32(len(sv)), output: int32(len(cv))}, &next, sv, err
}

// preloaded is the input topic after preloading: the out sizes of each
// record by partition and offset, for the ceiling, and what a correct
// processor reports after reading it.
type preloaded struct {
	topic   string
	records int64
	sizes   [][]outSizes // [partition][offset]
	expect  expectation
}

func (p *preloaded) lookup(r *kgo.Record) (outSizes, bool) {
	if int(r.Partition) >= len(p.sizes) || r.Offset >= int64(len(p.sizes[r.Partition])) {
		return outSizes{}, false
	}
	return p.sizes[r.Partition][r.Offset], true
}

// produceAll writes records to topic with a fast non-transactional producer,
// keyed (the default partitioner: murmur2 of the key, as the Java client and
// orderflow's outputs). onAck, if not nil, sees each acknowledged record
// with its index; calls for one partition come in offset order. opts are
// added to the producer's options.
func produceAll(ctx context.Context, brokers []string, topic string, n int, record func(i int) (key, value []byte), onAck func(i int, r *kgo.Record), opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		kgo.ProducerBatchMaxBytes(1 << 20),
	}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var (
		mu   sync.Mutex
		perr error
	)
	for i := range n {
		k, v := record(i)
		cl.Produce(ctx, &kgo.Record{Key: k, Value: v}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if perr == nil {
					perr = fmt.Errorf("producing to %s: %w", topic, err)
				}
				return
			}
			if onAck != nil {
				onAck(i, r)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return perr
}

// preload writes the encoded workload to topic and returns the out sizes by
// partition and offset.
func preload(ctx context.Context, brokers []string, topic string, partitions int32, e *encoded) (*preloaded, error) {
	return preloadRecords(ctx, brokers, topic, partitions, e.len(), func(i int) ([]byte, []byte, outSizes) {
		return e.keys.at(i), e.values.at(i), e.sizes[i]
	})
}

// preloadRecords writes records 0..n-1 to topic and returns their out
// sizes by partition and offset, and what they should give.
func preloadRecords(ctx context.Context, brokers []string, topic string, partitions int32, n int, record func(i int) ([]byte, []byte, outSizes)) (*preloaded, error) {
	p := &preloaded{topic: topic, sizes: make([][]outSizes, partitions)}
	all := make([]outSizes, n)
	var bad error
	err := produceAll(ctx, brokers, topic, n, func(i int) ([]byte, []byte) {
		k, v, sz := record(i)
		all[i] = sz
		return k, v
	}, func(i int, r *kgo.Record) {
		s := p.sizes[r.Partition]
		if r.Offset != int64(len(s)) && bad == nil {
			bad = fmt.Errorf("preload: partition %d offset %d, expected %d (is the topic fresh?)", r.Partition, r.Offset, len(s))
		}
		p.sizes[r.Partition] = append(s, all[i])
		p.records++
		p.expect.events++
		p.expect.transitions += int64(all[i].fired)
		switch all[i].kind {
		case kindDLQ:
			p.expect.dlq++
		case kindRejected:
			p.expect.rejections++
		default:
			p.expect.transitions++
		}
	})
	if err == nil {
		err = bad
	}
	return p, err
}
