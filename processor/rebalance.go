package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderflow/orderflow/statestore"
	"github.com/twmb/franz-go/pkg/kgo"
)

// onAssigned runs in thread's group goroutine before fetching of the new
// partitions starts: pause them, and restore each in its own goroutine.
func (p *Processor) onAssigned(thread int, cl *kgo.Client, assigned map[string][]int32) {
	p.rebalances.Add(1) // the loops drop their warm states
	// franz-go calls this at the end of every join, even with nothing
	// assigned: once the new partitions are registered (not ready until
	// restored), the thread has joined the group.
	defer func() {
		p.mu.Lock()
		p.mu.joined[thread] = true
		p.mu.Unlock()
	}()
	parts := assigned[p.cfg.Topics.Events]
	if len(parts) == 0 {
		return
	}
	cl.PauseFetchPartitions(map[string][]int32{p.cfg.Topics.Events: parts})
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range parts {
		if old, ok := p.mu.parts[part]; ok {
			if old.thread == thread {
				continue
			}
			// Another thread lost it without being told yet: its
			// restore (if any) must end before this one starts.
			old.cancel()
			p.mu.Unlock()
			<-old.done
			p.mu.Lock()
		}
		ctx, cancel := context.WithCancel(context.Background())
		ps := &partition{thread: thread, cancel: cancel, done: make(chan struct{}), assigned: time.Now()}
		p.mu.parts[part] = ps
		p.restores.Add(1)
		go p.restore(ctx, cl, part, ps)
	}
	p.log.Info("partitions assigned", "partitions", parts, "thread", thread)
}

// onRevoked (also for lost partitions) cancels the thread's restores of the
// partitions and forgets them; their data stays in the store. The
// transaction in flight is aborted by the GroupTransactSession.
func (p *Processor) onRevoked(thread int, revoked map[string][]int32) {
	p.rebalances.Add(1) // the loops drop their warm states
	parts := revoked[p.cfg.Topics.Events]
	if len(parts) == 0 {
		return
	}
	var wait []*partition
	p.mu.Lock()
	for _, part := range parts {
		if ps, ok := p.mu.parts[part]; ok && ps.thread == thread {
			ps.cancel()
			wait = append(wait, ps)
			delete(p.mu.parts, part)
		}
	}
	p.mu.Unlock()
	for _, ps := range wait {
		<-ps.done
	}
	p.log.Info("partitions revoked", "partitions", parts, "thread", thread)
}

// stopRestores cancels the restores of a thread's partitions, forgets the
// partitions and waits for the restores to end.
func (p *Processor) stopRestores(thread int) {
	var wait []*partition
	p.mu.Lock()
	for part, ps := range p.mu.parts {
		if ps.thread == thread {
			ps.cancel()
			wait = append(wait, ps)
			delete(p.mu.parts, part)
		}
	}
	p.mu.Unlock()
	for _, ps := range wait {
		<-ps.done
	}
}

// restore brings the store level with changelog partition part, then resumes
// fetching the input partition.
func (p *Processor) restore(ctx context.Context, cl *kgo.Client, part int32, ps *partition) {
	defer p.restores.Done()
	defer close(ps.done)
	defer ps.cancel()

	// A standby copy of the partition stops following the changelog: the
	// restore takes it from where it is.
	standby := p.sb.release(part)

	// A batch committed to Kafka before this partition came back to us may
	// still be on its way to Pebble: let it land first.
	if p.awaitStoreWrites(ctx) != nil {
		return // revoked
	}

	start := time.Now()
	if err := p.waitStable(ctx, part); err != nil {
		if ctx.Err() == nil {
			p.fail(fmt.Errorf("%w: restoring partition %d: %w", ErrFatal, part, err))
		}
		return
	}
	// A few at a time: each restore holds a fetch and a batch of states.
	select {
	case p.restoreSlots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	res, err := p.store.Restore(ctx, part, statestore.RestoreOptions{
		Topic:      p.changelog,
		ClientOpts: p.connOpts(),
		Progress:   &ps.progress,
	})
	<-p.restoreSlots
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			p.fail(fmt.Errorf("%w: restoring partition %d from %s: %w", ErrFatal, part, p.changelog, err))
		}
		return
	}
	known, err := p.loadKnownOrders(part)
	if err != nil {
		if ctx.Err() == nil {
			p.fail(fmt.Errorf("%w: reading the orders of partition %d: %w", ErrFatal, part, err))
		}
		return
	}
	cen, err := p.countPartition(part)
	if err != nil {
		if ctx.Err() == nil {
			p.fail(fmt.Errorf("%w: reading the orders of partition %d: %w", ErrFatal, part, err))
		}
		return
	}
	p.mu.Lock()
	if p.mu.parts[part] != ps { // revoked meanwhile
		p.mu.Unlock()
		return
	}
	ps.known, ps.census, ps.ready = known, cen, true
	p.mu.Unlock()
	p.stats.update(func(s *Stats) { s.Restores++; s.Restored += res.Records })
	cl.ResumeFetchPartitions(map[string][]int32{p.cfg.Topics.Events: {part}})
	if p.m != nil {
		p.m.assignToProcess.Observe(time.Since(ps.assigned).Seconds())
	}
	p.log.Info("partition restored", "partition", part, "records", res.Records, "from", res.From, "to", res.To,
		"wiped", res.Wiped, "standby", standby, "took", time.Since(start).Round(time.Millisecond))
}

// waitStable waits until changelog partition part has no open transaction
// (last stable offset == high watermark). The previous owner may still be
// ending its last transaction when the partition reaches us: reading before
// it ends would miss state whose input offsets are about to be committed.
// An open transaction ends within the transaction timeout at the latest.
func (p *Processor) waitStable(ctx context.Context, part int32) error {
	deadline := time.Now().Add(3 * p.cfg.TransactionTimeout)
	for {
		ends, err := p.adm.ListEndOffsets(ctx, p.changelog)
		if err == nil {
			err = ends.Error()
		}
		var lsos map[int32]int64
		if err == nil {
			var stable = map[int32]int64{}
			l, e := p.adm.ListCommittedOffsets(ctx, p.changelog)
			if e == nil {
				e = l.Error()
			}
			err = e
			if e == nil {
				if o, ok := l.Lookup(p.changelog, part); ok {
					stable[part] = o.Offset
				}
				lsos = stable
			}
		}
		if err == nil {
			hwm, _ := ends.Lookup(p.changelog, part)
			if lsos[part] >= hwm.Offset {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			p.log.Warn("changelog partition still has an open transaction; restoring up to its last stable offset", "partition", part)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Processor) fail(err error) {
	select {
	case p.fatal <- err:
	default:
	}
}
