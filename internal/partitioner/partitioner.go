// Package partitioner computes where Kafka producers put a keyed record:
// the input partition of an order, hence where its state lives.
//
// Two partitioners matter for producers keyed by order id:
//
//   - Murmur2: the Java client's default (and Kafka Streams', franz-go's,
//     and librdkafka's "murmur2"): murmur2 of the key, its sign bit
//     cleared, modulo the partition count.
//   - CRC32: librdkafka's default "consistent_random" (kcat,
//     confluent-kafka-python, -go, -dotnet): the IEEE CRC-32 of the key
//     (librdkafka's rd_crc32, the same as zlib's crc32) as an unsigned
//     32-bit number modulo the partition count. For an empty key it picks
//     a random partition; order ids are never empty.
//
// Both functions neither allocate nor keep the key: they run for every
// input record.
package partitioner

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Name is a partitioner. The zero value is None: no partitioner (not
// configured, or none matches).
type Name uint8

// The partitioners.
const (
	None Name = iota
	Murmur2
	CRC32
)

// Names lists the partitioners Parse accepts, for flag help and errors.
const Names = "murmur2|crc32"

// String returns the name Parse accepts ("murmur2", "crc32"), "none" for
// None.
func (n Name) String() string {
	switch n {
	case Murmur2:
		return "murmur2"
	case CRC32:
		return "crc32"
	case None:
		return "none"
	}
	return fmt.Sprintf("partitioner(%d)", uint8(n))
}

// Parse returns the partitioner named s: "murmur2" or "crc32" (case
// insensitive; librdkafka's names "consistent_random" and "consistent" are
// taken for crc32, which is what they hash with).
func Parse(s string) (Name, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "murmur2":
		return Murmur2, nil
	case "crc32", "consistent_random", "consistent":
		return CRC32, nil
	}
	return None, fmt.Errorf("unknown partitioner %q: want %s (murmur2: Kafka's Java client, Kafka Streams, franz-go; crc32: librdkafka's default consistent_random, as kcat and confluent-kafka use)", s, Names)
}

// Other returns the other partitioner: CRC32 for Murmur2 and the other way
// round; None for None.
func (n Name) Other() Name {
	switch n {
	case Murmur2:
		return CRC32
	case CRC32:
		return Murmur2
	}
	return None
}

// Partition returns the partition this partitioner puts key in, in a topic
// of partitions partitions; -1 if partitions <= 0 or n is None.
func (n Name) Partition(key []byte, partitions int) int32 {
	if partitions <= 0 {
		return -1
	}
	switch n {
	case Murmur2:
		return int32((murmur2(key) & 0x7fffffff) % uint32(partitions))
	case CRC32:
		return int32(crc32.ChecksumIEEE(key) % uint32(partitions))
	}
	return -1
}

// Match returns which partitioner puts key in partition part of a topic of
// partitions partitions: first if it does (one hash), else first.Other()
// if it does (a second hash), else None. A key both put there is counted
// as first's.
func Match(first Name, key []byte, part int32, partitions int) Name {
	if first.Partition(key, partitions) == part {
		return first
	}
	if o := first.Other(); o != None && o.Partition(key, partitions) == part {
		return o
	}
	return None
}

// Kgo returns a franz-go partitioner that routes keyed records as n does.
// Records without a key: Murmur2 as franz-go's default (sticky), CRC32 to
// a random partition, as librdkafka's consistent_random.
func (n Name) Kgo() kgo.Partitioner {
	if n != CRC32 {
		return kgo.StickyKeyPartitioner(nil)
	}
	return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
		return func(r *kgo.Record, partitions int) int {
			if len(r.Key) == 0 {
				return rand.IntN(partitions)
			}
			return int(CRC32.Partition(r.Key, partitions))
		}
	})
}

// murmur2 is Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2),
// seed 0x9747b28c, bytes taken little-endian four at a time.
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
