package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/topology"
)

// Timers. An order's pending timers are part of its state (State.Timers),
// so they are in the changelog and restored with it; the store keeps a
// due-time index per partition (statestore.Due), written with every state
// (commitStore) and rebuilt by a restore (dueAt). Timers fire in two ways,
// both inside the transaction of the batch they are found in:
//   - before an event: every timer of its order due strictly before its
//     occurred_at (the rule replay follows);
//   - on the clock: once per commit interval a thread asks the index of each
//     of its partitions for the orders due by now (fireDue), even when no
//     records come.
// A fired timer moves the order to a new state and leaves the index entry
// that found it stale, so an entry can fire its timer only once whatever
// batch is aborted and retried: only a committed state moves the order on.

// dueAt tells the store when the first pending timer of an encoded state is
// due, to rebuild the index on restore (and to check entries against their
// orders). It decodes the state: its cost is per indexed order.
func (p *Processor) dueAt(value []byte) (int64, bool) {
	var st topology.State
	if err := p.stateCodec.DecodeState(value, &st); err != nil {
		return 0, false
	}
	return topology.NextDue(p.cfg.Machine, &st)
}

// timerMachine returns the machine when it has timers, for entry.setState;
// nil otherwise.
func (p *Processor) timerMachine() *topology.Machine {
	if p.timers {
		return p.cfg.Machine
	}
	return nil
}

// fireTimers fires the timers of order key (entry e, of partition part) due
// before limit (or at it, when inclusive), in due order. ts is the timestamp
// of the output records: the input record's that revealed the timers, or
// the clock's. It returns false if the batch is to abort.
func (p *Processor) fireTimers(b *batch, part int32, key []byte, e *entry, limit time.Time, inclusive bool, ts, now time.Time) bool {
	for {
		st := e.current()
		tm, ok := topology.NextTimer(p.cfg.Machine, st)
		if !ok || !tm.FiresBefore(limit) && !(inclusive && tm.Due.Equal(limit)) {
			return true
		}
		out := topology.FireWith(p.cfg.Machine, st, tm, &b.slab)
		next := &out.Next
		if next.ClosedAt == nil && p.terminal[out.ToLeaf] {
			next.ClosedAt = b.closedAtPtr(now)
		}
		sc := avro.StatusChangeFromTimer(string(key), &tm, &out, now)
		recs, err := p.transitionRecords(b, part, key, next, &sc, nil, ts)
		if err != nil {
			p.log.Error("encoding a fired timer's records", "order", string(key), "timer", tm.String(), "err", err)
			b.abort = true
			return false
		}
		if recs.reason != "" {
			// Nothing to refuse: the order keeps its state and the timer
			// stays pending (its entry is retried on every clock pass).
			p.log.Warn("a fired timer's records do not fit their topics; the timer stays pending",
				"order", string(key), "timer", tm.String(), "detail", recs.detail)
			return true
		}
		b.counts.moved(out.FromLeaf, out.ToLeaf)
		b.counts.timerFired(tm.State)
		e.setState(next, p.timerMachine())
		e.value, e.dirty = recs.state, true
		b.produce(recs.changelog)
		b.produce(recs.status)
	}
}

// transition is the records of one accepted transition.
type transition struct {
	state             []byte // the encoded state (the changelog record's value)
	changelog, status *kgo.Record
	// reason and detail say which record does not fit its topic (then the
	// records are nil).
	reason, detail string
}

// transitionRecords encodes the changelog record (state next, with hdrs)
// and the status record (sc) of a transition of order key in partition
// part, both with timestamp ts, and checks them against their topics'
// limits. An error is not the transition's fault.
func (p *Processor) transitionRecords(b *batch, part int32, key []byte, next *topology.State, sc *avro.StatusChange, hdrs []kgo.RecordHeader, ts time.Time) (transition, error) {
	state, err := p.stateCodec.EncodeStateCached(b.mem.space(), next, &b.mem.hist)
	if errors.Is(err, avro.ErrOversize) {
		return transition{reason: topology.ReasonStateTooLarge, detail: fmt.Sprintf("the order's new state does not encode: %v", err)}, nil
	}
	if err != nil {
		return transition{}, fmt.Errorf("encoding a state: %w", err)
	}
	state = b.mem.keep(state)
	clRec := b.mem.record(kgo.Record{Topic: p.changelog, Partition: part, Key: key, Value: state, Headers: hdrs, Timestamp: ts})
	if !b.limits.fits(clRec) {
		return transition{reason: topology.ReasonStateTooLarge, detail: b.limits.detail("the order's new state", clRec)}, nil
	}
	val, err := p.codec.EncodeStatusChange(b.mem.space(), sc)
	if errors.Is(err, avro.ErrOversize) {
		return transition{reason: topology.ReasonStatusTooLarge, detail: fmt.Sprintf("the status change does not encode: %v", err)}, nil
	}
	if err != nil {
		return transition{}, fmt.Errorf("encoding a status change: %w", err)
	}
	stRec := b.mem.record(kgo.Record{Topic: p.cfg.Topics.Status, Key: key, Value: b.mem.keep(val), Timestamp: ts})
	if !b.limits.fits(stRec) {
		return transition{reason: topology.ReasonStatusTooLarge, detail: b.limits.detail("the status change", stRec)}, nil
	}
	return transition{state: state, changelog: clRec, status: stRec}, nil
}

// timersDue reports whether the clock pass of the timers is due (last is
// when the last one ran).
func (p *Processor) timersDue(last time.Time) bool {
	return p.timers && time.Since(last) >= p.cfg.CommitInterval
}

// fireDueIfDue runs the clock pass in batch b when it is due, and returns
// when this one ran: the zero time if it left due orders for the next batch.
func (p *Processor) fireDueIfDue(ctx context.Context, c committer, cl producer, thread int, b *batch, last time.Time) (time.Time, error) {
	if !p.timersDue(last) {
		return last, nil
	}
	// The index is read from the store (and Due drops stale entries):
	// at_least_once's last batch must be stored first, as for the sweep.
	if err := c.settle(); err != nil {
		return last, err
	}
	now := time.Now()
	behind, err := p.fireDue(ctx, cl, thread, b)
	if err != nil || behind {
		return time.Time{}, err
	}
	return now, nil
}

// fireDue fires the timers due by the processor's clock of the orders of
// the thread's ready partitions, at most SweepLimit orders per partition,
// and reports whether it reached that limit in any (more may be due).
func (p *Processor) fireDue(ctx context.Context, cl producer, thread int, b *batch) (behind bool, err error) {
	now := p.cfg.Now()
	for _, part := range p.readyOf(thread) {
		if ctx.Err() != nil || b.abort {
			return behind, nil
		}
		ids, err := p.store.Due(part, now, p.cfg.SweepLimit)
		if err != nil {
			return false, fmt.Errorf("%w: timers of partition %d: %w", ErrFatal, part, err)
		}
		behind = behind || len(ids) == p.cfg.SweepLimit
		if len(ids) == 0 {
			continue
		}
		_, ready, ps := p.partitionOf(thread, part)
		if !ready {
			continue // revoked meanwhile
		}
		b.setPartition(part, ps.known, ps.census)
		for _, id := range ids {
			e, err := p.load(b, string(id))
			if err != nil {
				p.log.Error("reading the state store", "partition", part, "order", string(id), "err", err)
				b.abort = true
				p.storeFailed(err)
				return behind, nil
			}
			// The records carry the wall clock's time (the processor's
			// clock may be set apart from it; the broker refuses
			// timestamps far from its own).
			if !p.fireTimers(b, part, id, e, now, true, time.Now(), now) {
				return behind, nil
			}
		}
		b.flush(cl)
	}
	return behind, nil
}
