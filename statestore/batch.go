package statestore

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

var (
	// ErrBatchDone is returned by a Batch method called after Commit or
	// Discard.
	ErrBatchDone = errors.New("statestore: batch already committed or discarded")
	// errWriteOnly is returned by getOrder on a batch from NewWriteBatch.
	errWriteOnly = errors.New("statestore: Get on a write-only batch")
)

// Batch is a set of writes, over one or more partitions, that reads its own
// writes and commits atomically: order states, changelog offsets and
// retention index entries land together or not at all. Finish every batch
// with exactly one Commit or Discard; afterwards its methods return
// ErrBatchDone. A Batch is not safe for concurrent use.
type Batch struct {
	s         *Store
	b         *pebble.Batch
	key       []byte // scratch for order keys
	index     indexBuckets
	due       indexBuckets
	done      bool
	writeOnly bool
}

// newBatch returns an empty batch that reads its own writes (getOrder). The
// underlying Pebble batch is pooled by Pebble and returned to its pool by
// Commit or Discard. Only tests read a batch back: the processor writes each
// order at most once per batch and uses NewWriteBatch.
func (s *Store) newBatch() *Batch {
	b := &Batch{s: s}
	if !s.closed.Load() {
		b.b = s.db.NewIndexedBatch()
	}
	return b
}

// NewWriteBatch returns an empty batch that does not read its own writes,
// which makes each write cheaper (Pebble keeps no index of them): Get
// getOrder returns errWriteOnly. It suits a caller that writes each order at most
// once per batch, as the processor does.
func (s *Store) NewWriteBatch() *Batch {
	b := &Batch{s: s, writeOnly: true}
	if !s.closed.Load() {
		b.b = s.db.NewBatch()
	}
	return b
}

func (b *Batch) check(p int32) error {
	if b.done {
		return ErrBatchDone
	}
	if b.b == nil {
		return ErrClosed
	}
	if err := b.s.usable(); err != nil {
		return err
	}
	return checkPartition(p)
}

// getOrder returns the value of order id in partition p as this batch would
// leave it: the batch's own put or Delete if it has one, the committed value
// otherwise. The returned slice belongs to the caller.
func (b *Batch) getOrder(p int32, id []byte) (value []byte, ok bool, err error) {
	if err := b.check(p); err != nil {
		return nil, false, err
	}
	if b.writeOnly {
		return nil, false, errWriteOnly
	}
	b.key = appendOrderKey(b.key[:0], p, id)
	return b.get(b.key)
}

func (b *Batch) get(key []byte) ([]byte, bool, error) {
	if b.writeOnly {
		return b.s.get(key)
	}
	v, closer, err := b.b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, b.s.classify(fmt.Errorf("statestore: batch get: %w", err))
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

// put sets the value of order id in partition p, asking the store's
// ClosedAt whether it is closed (PutClosed without the caller's answer).
func (b *Batch) put(p int32, id, value []byte) error {
	var at int64
	closed := false
	if b.s.closedAt != nil {
		at, closed = b.s.closedAt(value)
	}
	return b.PutClosed(p, id, value, at, closed)
}

// PutClosed sets the value of order id in partition p; the batch copies id
// and value. at and closed (false: the order is open) must be what the
// store's ClosedAt returns for value: the caller knows when the order
// closed, which spares the store a ClosedAt call that reads the value again.
// A closed order's retention index entry is written too (at Commit); a store
// without ClosedAt ignores at and closed.
func (b *Batch) PutClosed(p int32, id, value []byte, at int64, closed bool) error {
	if err := b.check(p); err != nil {
		return err
	}
	b.key = appendOrderKey(b.key[:0], p, id)
	if err := b.b.Set(b.key, value, nil); err != nil {
		return fmt.Errorf("statestore: batch put: %w", err)
	}
	if closed && b.s.closedAt != nil {
		b.index.add(p, at, id)
	}
	return nil
}

// IndexDue records in the due-time index that order id of partition p,
// written in this batch, has a pending timer due at dueAt (Unix ms): what
// the store's DueAt returns for its value. A store without DueAt ignores it.
func (b *Batch) IndexDue(p int32, id []byte, dueAt int64) error {
	if err := b.check(p); err != nil {
		return err
	}
	if b.s.dueAt != nil {
		b.due.prefix = dueIndexPrefix
		b.due.add(p, dueAt, id)
	}
	return nil
}

// Delete deletes order id in partition p. Its retention index entry, if it
// had one, is left to Expired, which drops entries that no longer match
// their order: Delete reads nothing.
func (b *Batch) Delete(p int32, id []byte) error {
	if err := b.check(p); err != nil {
		return err
	}
	b.key = appendOrderKey(b.key[:0], p, id)
	if err := b.b.Delete(b.key, nil); err != nil {
		return fmt.Errorf("statestore: batch delete: %w", err)
	}
	return nil
}

// SetChangelogOffset records next as the next changelog offset to read for
// partition p: every changelog record below it is reflected in the store
// once the batch commits.
func (b *Batch) SetChangelogOffset(p int32, next int64) error {
	if err := b.check(p); err != nil {
		return err
	}
	if next < 0 {
		return fmt.Errorf("statestore: negative changelog offset %d for partition %d", next, p)
	}
	if err := b.b.Set(metaOffsetKey(p), encodeOffset(next), nil); err != nil {
		return fmt.Errorf("statestore: batch set offset: %w", err)
	}
	return nil
}

// writes returns the number of writes in the batch: puts, deletes and
// offsets (the retention index entries are added at Commit).
func (b *Batch) writes() int {
	if b.done || b.b == nil {
		return 0
	}
	return int(b.b.Count())
}

// Commit writes the batch atomically, without fsync (NoSync: the changelog
// is the durable copy; a crash may lose recent batches, never part of one).
// The batch is finished whether or not Commit succeeds.
func (b *Batch) Commit() error {
	if b.done {
		return ErrBatchDone
	}
	b.done = true
	if b.b == nil || b.s.closed.Load() {
		return ErrClosed
	}
	defer b.release()
	// A failed store takes no more writes: a full disk would fill the
	// memtables until writes stall for good, and a corrupt one is replaced.
	if err := b.s.failure(); err != nil {
		return err
	}
	if err := b.index.write(b.b); err != nil {
		return err
	}
	if err := b.due.write(b.b); err != nil {
		return err
	}
	if b.b.Empty() {
		return nil
	}
	if err := b.b.Commit(pebble.NoSync); err != nil {
		return b.s.classify(fmt.Errorf("statestore: commit: %w", err))
	}
	return nil
}

// Discard drops the batch: nothing it holds reaches the store. Discarding
// a finished batch does nothing.
func (b *Batch) Discard() {
	if b.done {
		return
	}
	b.done = true
	if b.b != nil && !b.s.closed.Load() {
		b.release()
	}
}

func (b *Batch) release() {
	_ = b.b.Close()
	b.b = nil
}
