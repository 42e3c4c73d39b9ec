package statestore

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ErrRetentionDisabled is returned by Expired when the store was opened
// without Options.ClosedAt.
var ErrRetentionDisabled = errors.New("statestore: retention index disabled (Options.ClosedAt is nil)")

// Expired returns the IDs of up to limit orders of partition p (all of them
// if limit <= 0) that closed strictly before cutoff, oldest first (by the
// second they closed in, then by time and ID). It reads the retention index,
// not the states: its cost is proportional to the number of index entries
// it reads, about the orders it returns. The caller deletes them through a
// Batch (after producing their tombstones).
//
// Every entry is checked against the order's current value; entries that no
// longer match it (the order was deleted, by the caller's sweep or a
// tombstone, or re-created) are dropped here, so an entry outlives its
// order by at most one call. An index bucket that Expired reads to its end
// is rewritten without them, or deleted once none is left.
func (s *Store) Expired(p int32, cutoff time.Time, limit int) ([][]byte, error) {
	if s.closedAt == nil {
		return nil, ErrRetentionDisabled
	}
	return s.scanIndex(indexPrefix, s.closedAt, p, cutoff.UnixMilli(), limit)
}

// ErrTimersDisabled is returned by Due when the store was opened without
// Options.DueAt.
var ErrTimersDisabled = errors.New("statestore: due-time index disabled (Options.DueAt is nil)")

// Due returns the IDs of up to limit orders of partition p (all of them if
// limit <= 0) whose first pending timer is due at or before now, earliest
// first, from the due-time index: as Expired does for closed orders, it
// reads about as many index entries as it returns, checks each against the
// order's current value (Options.DueAt) and drops entries that no longer
// match. The caller fires the timers and writes the new states, indexing
// their next due times with Batch.IndexDue.
func (s *Store) Due(p int32, now time.Time, limit int) ([][]byte, error) {
	if s.dueAt == nil {
		return nil, ErrTimersDisabled
	}
	return s.scanIndex(dueIndexPrefix, s.dueAt, p, satInc(now.UnixMilli()), limit)
}

// satInc is ms+1, saturated.
func satInc(ms int64) int64 {
	if ms == 1<<63-1 {
		return ms
	}
	return ms + 1
}

// scanIndex returns up to limit orders of partition p whose entry in the
// index under prefix is before end (Unix ms) and still matches the order's
// value (at(value)), dropping the entries that do not.
func (s *Store) scanIndex(prefix uint32, at func([]byte) (int64, bool), p int32, end int64, limit int) ([][]byte, error) {
	if err := checkPartition(p); err != nil {
		return nil, err
	}
	if err := s.usable(); err != nil {
		return nil, err
	}
	lo, _ := indexBoundsOf(prefix, p)
	hi := appendIndexKeyOf(nil, prefix, p, end, nil)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, s.classify(fmt.Errorf("statestore: expired: %w", err))
	}
	var (
		out     [][]byte
		stale   = s.db.NewBatch()
		key     []byte
		entries []indexEntry
		keep    []byte
	)
	defer stale.Close()
	full := func() bool { return limit > 0 && len(out) >= limit }
	// live reports whether order id still has the closing time at.
	live := func(t int64, id []byte) (bool, error) {
		key = appendOrderKey(key[:0], p, id)
		v, found, err := s.get(key)
		if err != nil || !found {
			return false, err
		}
		cur, ok := at(v)
		return ok && cur == t, nil
	}
	fail := func(err error) ([][]byte, error) {
		_ = it.Close()
		return nil, s.classify(fmt.Errorf("statestore: expired: %w", err))
	}
	for valid := it.First(); valid && !full(); valid = it.Next() {
		start, id, ok := parseIndexKey(it.Key())
		if !ok {
			continue
		}
		if len(id) > 0 { // an entry of format 1: one key per order
			ok, err := live(start, id)
			if err != nil {
				return fail(err)
			}
			if ok {
				out = append(out, bytes.Clone(id))
			} else if err := stale.Delete(it.Key(), nil); err != nil {
				return fail(err)
			}
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fail(err)
		}
		if entries, err = parseBucket(entries[:0], start, v); err != nil {
			return fail(fmt.Errorf("partition %d, bucket at %d: %w", p, start, err))
		}
		slices.SortFunc(entries, func(a, b indexEntry) int {
			if c := cmp.Compare(a.at, b.at); c != 0 {
				return c
			}
			return bytes.Compare(a.id, b.id)
		})
		keep, dropped, complete := keep[:0], false, true
	bucket:
		for i, e := range entries {
			switch {
			case i > 0 && e.at == entries[i-1].at && bytes.Equal(e.id, entries[i-1].id):
				dropped = true // the same close written twice
				continue
			case e.at >= end: // not expired yet
			case full():
				complete = false
				break bucket
			default:
				ok, err := live(e.at, e.id)
				if err != nil {
					return fail(err)
				}
				if !ok {
					dropped = true
					continue
				}
				out = append(out, bytes.Clone(e.id))
			}
			keep = appendIndexEntry(keep, start, e.at, e.id)
		}
		if !complete || !dropped {
			continue
		}
		if len(keep) == 0 {
			err = stale.Delete(it.Key(), nil)
		} else {
			err = stale.Set(it.Key(), keep, nil)
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := it.Close(); err != nil {
		return nil, s.classify(fmt.Errorf("statestore: expired: %w", err))
	}
	if !stale.Empty() {
		if err := stale.Commit(pebble.NoSync); err != nil {
			return nil, s.classify(fmt.Errorf("statestore: expired: drop stale index entries: %w", err))
		}
	}
	return out, nil
}

// indexBuckets gathers the retention index entries of one batch. The index
// keeps a key per partition and second of closing time (a bucket), whose
// value is the list of orders that closed in it; a batch adds its entries
// with one Pebble Merge per bucket (the default merger concatenates). A key
// per closed order, as format 1 kept, nearly doubled Pebble's cost of
// writing an order that closes: most of a write's cost is per key, in the
// memtable and in every flush and compaction.
type indexBuckets struct {
	bs     []indexBucket
	prefix uint32           // the index's key prefix; 0: the retention index
	last   int              // the bucket added to last
	find   map[bucketID]int // index into bs, once it holds more than a few
	key    []byte           // scratch
}

type bucketID struct {
	p     int32
	start int64
}

type indexBucket struct {
	bucketID
	val []byte
}

// add records that order id of partition p closed at closedAt.
func (x *indexBuckets) add(p int32, closedAt int64, id []byte) {
	b := bucketID{p, bucketStart(closedAt)}
	i := x.index(b)
	x.bs[i].val = appendIndexEntry(x.bs[i].val, b.start, closedAt, id)
}

func (x *indexBuckets) index(b bucketID) int {
	if x.last < len(x.bs) && x.bs[x.last].bucketID == b {
		return x.last
	}
	if x.find != nil {
		if i, ok := x.find[b]; ok {
			x.last = i
			return i
		}
	} else {
		for i := range x.bs {
			if x.bs[i].bucketID == b {
				x.last = i
				return i
			}
		}
	}
	i := len(x.bs)
	if i < cap(x.bs) { // reuse the value buffer of an earlier batch
		x.bs = x.bs[:i+1]
		x.bs[i].bucketID, x.bs[i].val = b, x.bs[i].val[:0]
	} else {
		x.bs = append(x.bs, indexBucket{bucketID: b})
	}
	switch {
	case x.find != nil:
		x.find[b] = i
	case len(x.bs) > 8: // a restore of slow traffic spans many seconds
		x.find = make(map[bucketID]int, 2*len(x.bs))
		for j, e := range x.bs {
			x.find[e.bucketID] = j
		}
	}
	x.last = i
	return i
}

// write merges each bucket's entries into pb and empties x.
func (x *indexBuckets) write(pb *pebble.Batch) error {
	for _, b := range x.bs {
		prefix := x.prefix
		if prefix == 0 {
			prefix = indexPrefix
		}
		x.key = appendIndexKeyOf(x.key[:0], prefix, b.p, b.start, nil)
		if err := pb.Merge(x.key, b.val, nil); err != nil {
			return fmt.Errorf("statestore: index: %w", err)
		}
	}
	x.reset()
	return nil
}

func (x *indexBuckets) reset() {
	x.bs, x.last, x.find = x.bs[:0], 0, nil
}
