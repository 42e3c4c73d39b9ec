package statestore

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ErrRetentionDisabled is returned by Expired when the store was opened
// without Options.ClosedAt.
var ErrRetentionDisabled = errors.New("statestore: retention index disabled (Options.ClosedAt is nil)")

// Expired returns the IDs of up to limit orders of partition p (all of them
// if limit <= 0) that closed strictly before cutoff, oldest first. It reads
// the retention index, not the states: its cost is proportional to the
// number of orders returned. The caller deletes them through a Batch (after
// producing their tombstones); Batch.Delete drops their index entries.
//
// Every candidate is checked against the order's current value; index
// entries that no longer match it (the order was deleted or re-created) are
// removed here.
func (s *Store) Expired(p int32, cutoff time.Time, limit int) ([][]byte, error) {
	if err := checkPartition(p); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if s.closedAt == nil {
		return nil, ErrRetentionDisabled
	}
	lo, _ := indexBounds(p)
	hi := appendIndexKey(nil, p, cutoff.UnixMilli(), nil)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("statestore: expired: %w", err)
	}
	var (
		out   [][]byte
		stale = s.db.NewBatch()
		key   []byte
	)
	defer stale.Close()
	for valid := it.First(); valid && (limit <= 0 || len(out) < limit); valid = it.Next() {
		at, id, ok := parseIndexKey(it.Key())
		if !ok {
			continue
		}
		key = appendOrderKey(key[:0], p, id)
		v, found, err := s.get(key)
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		if found {
			if cur, closed := s.closedAt(v); closed && cur == at {
				out = append(out, append([]byte(nil), id...))
				continue
			}
		}
		if err := stale.Delete(it.Key(), nil); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("statestore: expired: %w", err)
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("statestore: expired: %w", err)
	}
	if !stale.Empty() {
		if err := stale.Commit(pebble.NoSync); err != nil {
			return nil, fmt.Errorf("statestore: expired: drop stale index entries: %w", err)
		}
	}
	return out, nil
}
