package statestore

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Reserved top prefixes. Kafka partitions are non-negative int32s, so they
// can never collide with order keys.
// The due-time index of timers uses the retention index's layout under its
// own prefix. lowestReserved is the lowest of them: order keys sort below it.
const (
	dueIndexPrefix uint32 = 0xFFFFFFFD
	indexPrefix    uint32 = 0xFFFFFFFE
	metaPrefix     uint32 = 0xFFFFFFFF
	lowestReserved        = dueIndexPrefix
)

const (
	metaOffsetSuffix = 'o'
	// formatVersion is the keyspace format this build writes. Format 1
	// kept one retention index key per closed order; format 2 keeps a
	// bucket per second (indexBuckets). This build reads both and marks a
	// format 1 store as 2 when it opens it, so that an older build refuses
	// it rather than misread the buckets.
	formatVersion  = "2"
	formatVersion1 = "1"
)

// formatKey is the key of the keyspace format version, written at Open.
func formatKey() []byte {
	k := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, metaPrefix), metaPrefix)
	return append(k, "format"...)
}

// ErrInvalidPartition is returned for a negative partition number.
var ErrInvalidPartition = errors.New("statestore: invalid partition")

func checkPartition(p int32) error {
	if p < 0 {
		return fmt.Errorf("%w %d", ErrInvalidPartition, p)
	}
	return nil
}

// appendOrderKey appends [p][id].
func appendOrderKey(dst []byte, p int32, id []byte) []byte {
	return append(binary.BigEndian.AppendUint32(dst, uint32(p)), id...)
}

// partitionBounds returns the order-key range [lo, hi) of partition p.
func partitionBounds(p int32) (lo, hi []byte) {
	return binary.BigEndian.AppendUint32(nil, uint32(p)), binary.BigEndian.AppendUint32(nil, uint32(p)+1)
}

// closedKey maps a signed millisecond time to an order-preserving unsigned.
func closedKey(ms int64) uint64 { return uint64(ms) ^ (1 << 63) }

func closedFromKey(u uint64) int64 { return int64(u ^ (1 << 63)) }

// appendIndexKey appends [idx][p][closedAt][id]. With an empty id it is
// the key of the index bucket that starts at closedAt (see indexBuckets);
// with an id, an entry of format 1, which kept one key per closed order.
func appendIndexKey(dst []byte, p int32, closedAt int64, id []byte) []byte {
	return appendIndexKeyOf(dst, indexPrefix, p, closedAt, id)
}

// appendIndexKeyOf is appendIndexKey for the index under prefix.
func appendIndexKeyOf(dst []byte, prefix uint32, p int32, closedAt int64, id []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, prefix)
	dst = binary.BigEndian.AppendUint32(dst, uint32(p))
	dst = binary.BigEndian.AppendUint64(dst, closedKey(closedAt))
	return append(dst, id...)
}

const indexHeaderLen = 4 + 4 + 8

// parseIndexKey splits an index key of partition p into closedAt (a
// bucket's start) and id (empty for a bucket).
func parseIndexKey(k []byte) (closedAt int64, id []byte, ok bool) {
	if len(k) < indexHeaderLen {
		return 0, nil, false
	}
	return closedFromKey(binary.BigEndian.Uint64(k[8:16])), k[indexHeaderLen:], true
}

// bucketMillis is the span of closing times one index bucket holds.
const bucketMillis = 1000

// bucketStart returns the start of the bucket holding closedAt (floored, so
// that times before 1970 fall in the bucket below them).
func bucketStart(closedAt int64) int64 {
	r := closedAt % bucketMillis
	if r < 0 {
		r += bucketMillis
	}
	return closedAt - r
}

// appendIndexEntry appends one entry of a bucket's value: the closing time
// after the bucket's start, then the order ID, each behind its uvarint
// length or value.
func appendIndexEntry(dst []byte, start, closedAt int64, id []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(closedAt-start))
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	return append(dst, id...)
}

// indexEntry is one closed order of a bucket; id points into the value.
type indexEntry struct {
	at int64
	id []byte
}

// parseBucket appends the entries of the value of the bucket starting at
// start to dst.
func parseBucket(dst []indexEntry, start int64, v []byte) ([]indexEntry, error) {
	for len(v) > 0 {
		off, n := binary.Uvarint(v)
		if n <= 0 || off >= bucketMillis {
			return dst, errCorruptBucket
		}
		v = v[n:]
		l, n := binary.Uvarint(v)
		if n <= 0 || l > uint64(len(v)-n) {
			return dst, errCorruptBucket
		}
		v = v[n:]
		dst = append(dst, indexEntry{at: start + int64(off), id: v[:l:l]})
		v = v[l:]
	}
	return dst, nil
}

var errCorruptBucket = errors.New("statestore: corrupt retention index bucket")

// indexBounds returns the index range [lo, hi) of partition p.
func indexBounds(p int32) (lo, hi []byte) { return indexBoundsOf(indexPrefix, p) }

// dueIndexBounds returns the due-time index range [lo, hi) of partition p.
func dueIndexBounds(p int32) (lo, hi []byte) { return indexBoundsOf(dueIndexPrefix, p) }

func indexBoundsOf(prefix uint32, p int32) (lo, hi []byte) {
	lo = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, prefix), uint32(p))
	hi = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, prefix), uint32(p)+1)
	return lo, hi
}

// metaOffsetKey is the key of partition p's next changelog offset.
func metaOffsetKey(p int32) []byte {
	k := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, metaPrefix), uint32(p))
	return append(k, metaOffsetSuffix)
}

// metaBounds returns the meta range [lo, hi) of partition p.
func metaBounds(p int32) (lo, hi []byte) {
	lo = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, metaPrefix), uint32(p))
	hi = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, metaPrefix), uint32(p)+1)
	return lo, hi
}

func encodeOffset(next int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(next)) }

func decodeOffset(v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("statestore: corrupt changelog offset (%d bytes)", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}
