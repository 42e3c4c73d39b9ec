package processor

import (
	"fmt"
	"sync"

	"github.com/orderflow/orderflow/statestore"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

type stateKey struct {
	p  int32
	id string
}

// entry is an order's state as the current batch leaves it.
type entry struct {
	state *topology.State // nil: the order does not exist (or was deleted)
	value []byte          // the encoded state written to the changelog; nil with state == nil
	dirty bool            // written by this batch
}

// batch is the work of one transaction (or one at_least_once commit): the
// overlay of order states it changed (read-your-writes for later events of
// the same order), the changelog offsets its records got, and its counts,
// which reach the processor's stats only once the batch is committed.
type batch struct {
	overlay map[stateKey]*entry
	warm    map[stateKey]*entry // the last committed batch's overlay (read only)
	records int                 // input records in the batch
	abort   bool
	stored  bool // committed to Kafka and written to the store

	counts counts

	mu        sync.Mutex
	offsets   map[int32]int64 // next changelog offset per partition
	err       error           // first produce error
	changelog string
	promise   func(*kgo.Record, error)
}

func newBatch(changelog string) *batch {
	b := &batch{
		overlay:   make(map[stateKey]*entry),
		offsets:   make(map[int32]int64),
		changelog: changelog,
		counts:    newCounts(),
	}
	b.promise = b.onProduced
	return b
}

func (b *batch) onProduced(r *kgo.Record, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		if b.err == nil {
			b.err = fmt.Errorf("producing to %s: %w", r.Topic, err)
		}
		return
	}
	if r.Topic == b.changelog && r.Offset+1 > b.offsets[r.Partition] {
		b.offsets[r.Partition] = r.Offset + 1
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
	sb := s.NewBatch()
	for k, e := range b.overlay {
		if !e.dirty {
			continue
		}
		var err error
		if e.value == nil {
			err = sb.Delete(k.p, []byte(k.id))
		} else {
			err = sb.Put(k.p, []byte(k.id), e.value)
		}
		if err != nil {
			sb.Discard()
			return err
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
	return nil
}
