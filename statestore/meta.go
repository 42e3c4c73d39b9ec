package statestore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ChangelogSource names the changelog topic a store's data came from: its
// name and its Kafka topic ID. A topic deleted and created again under the
// same name has a new ID, and offsets the store holds for the old one mean
// nothing in the new one.
type ChangelogSource struct {
	Topic string
	ID    [16]byte
}

// sourceKey is the key of the store's ChangelogSource, beside formatKey
// among the store-wide keys (no partition's meta range reaches them).
func sourceKey() []byte {
	k := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, metaPrefix), metaPrefix)
	return append(k, "changelog-source"...)
}

// Source returns the changelog the store's data came from, and false if
// none is recorded (a new store, or one written before sources were
// recorded).
func (s *Store) Source() (ChangelogSource, bool, error) {
	v, ok, err := s.get(sourceKey())
	if err != nil || !ok {
		if err != nil {
			err = s.classify(err)
		}
		return ChangelogSource{}, false, err
	}
	if len(v) < 16 {
		return ChangelogSource{}, false, fmt.Errorf("statestore: corrupt changelog source (%d bytes)", len(v))
	}
	var src ChangelogSource
	copy(src.ID[:], v)
	src.Topic = string(v[16:])
	return src, true, nil
}

// Adopt records src as the changelog the store's data comes from, sets the
// changelog offset of each partition of offsets and drops the partitions
// of drop, in one batch that is on disk when Adopt returns.
func (s *Store) Adopt(src ChangelogSource, offsets map[int32]int64, drop []int32) error {
	if s.closed.Load() {
		return ErrClosed
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, p := range drop {
		if err := checkPartition(p); err != nil {
			return err
		}
		if err := deletePartition(b, p); err != nil {
			return err
		}
	}
	for p, next := range offsets {
		if err := checkPartition(p); err != nil {
			return err
		}
		if err := b.Set(metaOffsetKey(p), encodeOffset(next), nil); err != nil {
			return fmt.Errorf("statestore: adopt: %w", err)
		}
	}
	if err := b.Set(sourceKey(), append(src.ID[:], src.Topic...), nil); err != nil {
		return fmt.Errorf("statestore: adopt: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("statestore: adopt: %w", err)
	}
	// No write-ahead log: durable once flushed.
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("statestore: adopt: %w", err)
	}
	return nil
}

// HoldsOrders reports whether any partition holds an order's state.
func (s *Store) HoldsOrders() (bool, error) {
	if s.closed.Load() {
		return false, ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: binary.BigEndian.AppendUint32(nil, 0),
		UpperBound: binary.BigEndian.AppendUint32(nil, lowestReserved),
	})
	if err != nil {
		return false, s.classify(fmt.Errorf("statestore: holds orders: %w", err))
	}
	found := it.First()
	if err := it.Close(); err != nil {
		return false, s.classify(fmt.Errorf("statestore: holds orders: %w", err))
	}
	return found, nil
}

// Partitions returns the partitions for which the store holds a changelog
// offset, in order.
func (s *Store) Partitions() ([]int32, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	lo := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, metaPrefix), 0)
	hi := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, metaPrefix), 1<<31)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, s.classify(fmt.Errorf("statestore: partitions: %w", err))
	}
	var out []int32
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) == 9 && k[8] == metaOffsetSuffix {
			out = append(out, int32(binary.BigEndian.Uint32(k[4:8])))
		}
	}
	if err := it.Close(); err != nil {
		return nil, s.classify(fmt.Errorf("statestore: partitions: %w", err))
	}
	return out, nil
}

// EachState calls fn with the ID and encoded state of every order partition
// p holds, in key order, from a consistent snapshot. Both slices are valid
// only during the call.
func (s *Store) EachState(p int32, fn func(id, value []byte) error) error {
	return s.eachKey(p, "each state", func(it *pebble.Iterator, id []byte) error {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		return fn(id, v)
	})
}

// eachKey calls fn for every order key of partition p, in key order, from
// a consistent snapshot, with the iterator positioned on it; the first
// error stops it. what names the caller in errors.
func (s *Store) eachKey(p int32, what string, fn func(it *pebble.Iterator, id []byte) error) error {
	if err := checkPartition(p); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	lo, hi := partitionBounds(p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return s.classify(fmt.Errorf("statestore: %s: %w", what, err))
	}
	for valid := it.First(); valid && err == nil; valid = it.Next() {
		err = fn(it, it.Key()[len(lo):])
	}
	if err = errors.Join(err, it.Close()); err != nil {
		return s.classify(fmt.Errorf("statestore: %s: %w", what, err))
	}
	return nil
}
