package processor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/internal/ksession"
	"github.com/orderflow/orderflow/statestore"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The commit protocol. A session ends each of its batches through its
// committer, one per guarantee:
//
//   - exactly_once (txnCommitter): the batch's outputs, its changelog
//     records and its input offsets commit in one Kafka transaction, then
//     its states and changelog offsets are written to the store in one
//     Pebble batch. An abort discards the batch; the session rewinds to the
//     committed offsets and reads it again.
//   - at_least_once (asyncCommitter): once the client has delivered the
//     batch's records, the store is written, then the input offsets are
//     committed, in the background while the session processes the next
//     batch.
//
// Either way the store is written only after Kafka has the batch, so it is
// never ahead of the changelog. Processor.commitMu is read-held from the
// end of a batch until its store write, and write-held briefly by a
// restore before it starts (awaitStoreWrites), so a restore never races
// the store write of a batch committed before the partition was revoked.
type committer interface {
	// begin starts a batch (exactly_once: its transaction).
	begin() error
	// settle waits until the store holds every batch ended so far
	// (at_least_once: the commit in flight).
	settle() error
	// end ends batch b once it is processed. ok: b's states may serve the
	// next batch (b is committed, or being committed); not ok: b was
	// aborted and is read again.
	end(ctx context.Context, b *batch) (ok bool, err error)
	// memory returns the output memory of the next batch.
	memory() *outputMemory
	// close waits for a commit in flight and closes the client, which
	// leaves the group.
	close()
}

// awaitStoreWrites waits until every batch committed to Kafka so far is in
// the store, or until ctx ends. It must give up with ctx: a batch end
// read-holds commitMu while GroupTransactSession.End waits for a revoke
// callback, and the revoke waits for this partition's restore, which
// cancelling ctx is how it stops. The lock is taken in a goroutine, which
// ends as soon as the batch ends let it.
func (p *Processor) awaitStoreWrites(ctx context.Context) error {
	written := make(chan struct{})
	go func() {
		p.commitMu.Lock()
		p.commitMu.Unlock() //nolint:staticcheck // an empty critical section is the point
		close(written)
	}()
	select {
	case <-written:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// txnCommitter ends the batches of an exactly_once session.
type txnCommitter struct {
	p      *Processor
	thread int
	sess   *kgo.GroupTransactSession
	mem    *outputMemory
	aborts int // aborted batches in a row
}

func (c *txnCommitter) begin() error {
	if err := c.sess.Begin(); err != nil {
		return c.p.txnError(c.thread, "beginning a transaction", err)
	}
	return nil
}

func (c *txnCommitter) settle() error         { return nil }
func (c *txnCommitter) memory() *outputMemory { return c.mem }
func (c *txnCommitter) close()                { c.sess.Close() }

// end ends b's transaction. After an abort it discards the batch and
// pauses before the next one (abortBackoff).
func (c *txnCommitter) end(ctx context.Context, b *batch) (bool, error) {
	committed, err := c.commit(ctx, b)
	if err != nil {
		return false, err
	}
	c.p.batchEnded(b, committed)
	if committed {
		c.aborts = 0
		return true, nil
	}
	c.mem.drop() // the client may still hold the records of a failed batch
	c.aborts++
	sleep(ctx, abortBackoff(c.aborts)) // ctx done: the session ends at its next poll
	return false, nil
}

// commit commits the transaction, then the Pebble batch; or aborts the
// transaction.
func (c *txnCommitter) commit(ctx context.Context, b *batch) (bool, error) {
	p := c.p
	endCtx, done := p.ending(ctx)
	defer done()
	began := time.Now()
	at := began // the current phase's start

	try := kgo.TryCommit
	var produceErr error
	layoutErr := p.layoutHolds(endCtx, b.misrouted)
	if b.abort || layoutErr != nil {
		try = kgo.TryAbort
	} else {
		// A record that the client or the broker refuses (one too large,
		// say) fails its own promise, not the transaction: End would
		// commit the others, and the input offsets past it. So every
		// promise is answered before End decides. (End flushes anyway;
		// this flush only comes first.)
		if err := c.sess.Client().Flush(endCtx); err != nil {
			return false, fmt.Errorf("flushing the batch's records: %w", err)
		}
		if err := b.waitProduced(endCtx); err != nil {
			return false, fmt.Errorf("flushing the batch's records: %w", err)
		}
		at = p.m.phase(phaseFlush, at)
		if produceErr = b.produceErr(); produceErr != nil {
			try = kgo.TryAbort
		}
	}
	committed, err := c.sess.End(endCtx, try)
	ended := p.m.phase(phaseEnd, at)
	if layoutErr != nil {
		return false, layoutFailure(layoutErr)
	}
	if err != nil {
		return false, p.txnError(c.thread, "ending the transaction", err)
	}
	if !committed {
		p.stats.update(func(s *Stats) { s.Aborts++ })
		if produceErr != nil {
			// A new session: it reads the topics' limits again. Unless
			// the record failed for a reason a new session cannot fix
			// (fenced by a twin instance, say): txnError ends Run.
			return false, p.txnError(c.thread, "transaction aborted: a record of the batch was not produced", produceErr)
		}
		why := b.abortWhy
		if !b.abort {
			// End aborts by itself when the group rebalanced since the
			// transaction began or committing its offsets failed.
			why = "the group rebalanced during the transaction, or committing its input offsets failed"
		}
		p.log.Info("transaction aborted; the batch will be processed again", "reason", why, "records", b.records)
		return false, nil
	}
	if err := b.commitStore(p.store); err != nil {
		return false, fmt.Errorf("%w: writing the state store: %w", ErrFatal, err)
	}
	p.m.phase(phaseStore, ended)
	p.committed(b, began)
	return true, nil
}

// asyncCommitter ends the batches of an at_least_once session, each in the
// background: the next batch is processed while the client delivers the
// last one's records and the store and the offsets are written, and waits
// for that commit before it is ended in turn, so the store always holds
// every batch before the last. The two batches use alternate output
// memory.
type asyncCommitter struct {
	p        *Processor
	cl       *kgo.Client
	thread   int
	mems     [2]*outputMemory
	mem      int        // the index in mems of the next batch's
	inflight chan error // the commit of the last batch, while it runs
}

func (c *asyncCommitter) begin() error          { return nil }
func (c *asyncCommitter) memory() *outputMemory { return c.mems[c.mem] }

// settle waits for the commit in flight, if any.
func (c *asyncCommitter) settle() error {
	if c.inflight == nil {
		return nil
	}
	err := <-c.inflight
	c.inflight = nil
	return err
}

// end starts b's commit, once the last batch's has ended.
func (c *asyncCommitter) end(ctx context.Context, b *batch) (bool, error) {
	if err := c.settle(); err != nil {
		return false, err
	}
	if b.abort {
		// Without a transaction there is nothing to abort: start a new
		// session, which resumes from the committed offsets.
		return false, fmt.Errorf("batch abandoned (%s); resuming from the committed offsets", b.abortWhy)
	}
	done := make(chan error, 1)
	go func() {
		err := c.commit(ctx, b)
		c.p.batchEnded(b, err == nil)
		done <- err
	}()
	c.inflight = done
	c.mem = 1 - c.mem
	return true, nil
}

func (c *asyncCommitter) close() {
	if err := c.settle(); err != nil {
		c.p.log.Warn("the last batch was not committed; it will be processed again", "thread", c.thread, "err", err)
	}
	c.cl.Close()
}

// commit commits an at_least_once batch: once the client has delivered
// all its records, the Pebble batch, then the input offsets. A failure
// before the offsets are committed leaves them where they were: the batch
// is read again.
func (c *asyncCommitter) commit(ctx context.Context, b *batch) error {
	p := c.p
	endCtx, done := p.ending(ctx)
	defer done()
	began := time.Now()
	if err := b.waitProduced(endCtx); err != nil {
		return fmt.Errorf("flushing outputs: %w", err)
	}
	p.m.phase(phaseFlush, began)
	if err := b.produceErr(); err != nil {
		return err
	}
	if err := p.layoutHolds(endCtx, b.misrouted); err != nil {
		return layoutFailure(err)
	}
	stored := time.Now()
	if err := b.commitStore(p.store); err != nil {
		return fmt.Errorf("%w: writing the state store: %w", ErrFatal, err)
	}
	at := p.m.phase(phaseStore, stored)
	// Only the partitions the thread still owns: a revoked one's records
	// are read again by its new owner.
	offsets := make(map[int32]kgo.EpochOffset, len(b.next))
	for part, o := range b.next {
		if owned, _, _ := p.partitionState(c.thread, part); owned {
			offsets[part] = o
		}
	}
	var cerr error
	if len(offsets) > 0 {
		cerr = ksession.CommitOffsets(endCtx, c.cl, p.cfg.Topics.Events, offsets)
	}
	p.m.phase(phaseEnd, at)
	if cerr != nil {
		p.log.Warn("committing offsets failed; the batch may be processed again", "err", cerr)
	}
	p.committed(b, began)
	return nil
}

// ending starts the end of a batch: it read-holds commitMu until the
// batch is in the store, and returns the context of the end, which the
// shutdown signal does not cut short (a cancelled End leaves the client in
// an unknown state). done releases both.
func (p *Processor) ending(ctx context.Context) (endCtx context.Context, done func()) {
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*p.cfg.TransactionTimeout)
	p.commitMu.RLock()
	return endCtx, func() {
		p.commitMu.RUnlock()
		cancel()
	}
}

// committed counts a committed batch.
func (p *Processor) committed(b *batch, began time.Time) {
	p.m.committed(&b.counts, began) // first: whoever sees Stats move sees the metrics too
	p.stats.add(&b.counts)
	if msg, args, warn := p.routing.add(&b.counts); msg != "" {
		if warn {
			p.log.Warn(msg, args...)
		} else {
			p.log.Info(msg, args...)
		}
	}
	b.counts.release()
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
				if err == nil && w.e.timed { // only with a machine with timers
					err = sb.IndexDue(part, []byte(w.id), w.e.due)
				}
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
	b.countStates()
	b.stored = true
	b.mem.recycle() // the client is done with the batch's records
	return nil
}

// countStates moves the orders the batch stored in the census of their
// partitions: from where the batch found them to where it left them.
func (b *batch) countStates() {
	for part, orders := range b.overlay {
		cen := b.census[part]
		if cen == nil {
			continue
		}
		cen.mu.Lock()
		for _, e := range orders {
			if e.dirty {
				cen.move(e.was, censusKeyOf(e.current()))
			}
		}
		cen.mu.Unlock()
	}
}
