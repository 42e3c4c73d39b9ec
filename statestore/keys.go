package statestore

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Reserved top prefixes. Kafka partitions are non-negative int32s, so they
// can never collide with order keys.
const (
	indexPrefix uint32 = 0xFFFFFFFE
	metaPrefix  uint32 = 0xFFFFFFFF
)

const (
	metaOffsetSuffix = 'o'
	formatVersion    = "1"
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

// appendIndexKey appends [idx][p][closedAt][id].
func appendIndexKey(dst []byte, p int32, closedAt int64, id []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, indexPrefix)
	dst = binary.BigEndian.AppendUint32(dst, uint32(p))
	dst = binary.BigEndian.AppendUint64(dst, closedKey(closedAt))
	return append(dst, id...)
}

const indexHeaderLen = 4 + 4 + 8

// parseIndexKey splits an index key of partition p into closedAt and id.
func parseIndexKey(k []byte) (closedAt int64, id []byte, ok bool) {
	if len(k) < indexHeaderLen {
		return 0, nil, false
	}
	return closedFromKey(binary.BigEndian.Uint64(k[8:16])), k[indexHeaderLen:], true
}

// indexBounds returns the index range [lo, hi) of partition p.
func indexBounds(p int32) (lo, hi []byte) {
	lo = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, indexPrefix), uint32(p))
	hi = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, indexPrefix), uint32(p)+1)
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
