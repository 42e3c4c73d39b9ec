package processor

import (
	"slices"
	"time"
)

// A partition whose batches keep failing (each aborted, or its session
// lost) makes no progress: its events wait, and the instance must not look
// healthy. The processor counts each input partition's failed batches in a
// row, resets the count when a batch that read it commits, and reports a
// partition with stallAfter failures or more as stalled: the instance is
// then not ready (/readyz, orderflow_ready) and orderflow_stalled_partitions
// counts it. Retries go on, with a growing pause (abortBackoff), so a
// transient cause (a broker away, a schema registry down) heals by itself.
const stallAfter = 3

// batchEnded counts the end of a batch for the partitions it read.
func (p *Processor) batchEnded(b *batch, committed bool) {
	if b == nil || len(b.next) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for part := range b.next {
		if committed {
			if p.mu.failures[part] >= stallAfter {
				p.log.Info("partition makes progress again", "partition", part)
			}
			delete(p.mu.failures, part)
			continue
		}
		p.mu.failures[part]++
		if p.mu.failures[part] == stallAfter {
			p.log.Error("partition stalled: its last batches all failed; the instance reports not ready until one commits (see the errors above)",
				"partition", part, "failed_batches", stallAfter)
		}
	}
}

// stalled returns the owned partitions that are stalled. Call with p.mu held.
func (p *Processor) stalledLocked() []int32 {
	var out []int32
	for part, n := range p.mu.failures {
		if _, owned := p.mu.parts[part]; owned && n >= stallAfter {
			out = append(out, part)
		}
	}
	slices.Sort(out)
	return out
}

// stalled returns the owned input partitions whose last batches all failed
// (at least three in a row), in order.
func (p *Processor) stalled() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalledLocked()
}

// abortBackoff is the pause before the next batch after n aborted batches
// in a row: none after the first (a rebalance aborts one batch), then
// 100 ms doubling to 5 s.
func abortBackoff(n int) time.Duration {
	if n < 2 {
		return 0
	}
	return min(100*time.Millisecond<<min(n-2, 10), 5*time.Second)
}
