package partitioner_test

import (
	"fmt"
	"testing"

	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/twmb/franz-go/pkg/kgo"
)

// librdkafka's own test of its partitioners (tests/0048-partitioner.c)
// gives the hashes of these keys: crc32 for consistent_random, murmur2
// (sign bit cleared) for murmur2.
var librdkafkaVectors = []struct {
	key            string
	crc32, murmur2 uint32
}{
	{"", 0x0, 0x106e08d9},
	{"23456", 0xb1b451d7, 0x058d780f},
	{"this is another string with more length to it perhaps", 0xb0150df7, 0x4f7703da},
	{"hejsan", 0xd077037e, 0x5ec19395},
}

func TestLibrdkafkaVectors(t *testing.T) {
	for _, n := range []int{7, 17, 12, 1000} {
		for _, v := range librdkafkaVectors {
			if got, want := partitioner.Murmur2.Partition([]byte(v.key), n), int32(v.murmur2%uint32(n)); got != want {
				t.Errorf("murmur2 %q over %d = %d, librdkafka says %d", v.key, n, got, want)
			}
			if v.key == "" {
				continue // consistent_random: random for an empty key
			}
			if got, want := partitioner.CRC32.Partition([]byte(v.key), n), int32(v.crc32%uint32(n)); got != want {
				t.Errorf("crc32 %q over %d = %d, librdkafka says %d", v.key, n, got, want)
			}
		}
	}
}

// The CRC32 of a key whose top bit is set: librdkafka takes the modulo of
// the unsigned value, Kafka-style sign clearing would differ.
func TestCRC32Unsigned(t *testing.T) {
	// crc32("hejsan") = 0xd077037e has its top bit set.
	n := 7
	if got, want := partitioner.CRC32.Partition([]byte("hejsan"), n), int32(0xd077037e%uint32(n)); got != want {
		t.Fatalf("got %d, want %d", got, want)
	}
	if masked := int32((0xd077037e & 0x7fffffff) % uint32(n)); masked == int32(0xd077037e%uint32(n)) {
		t.Fatal("vector does not tell the unsigned modulo from the masked one; pick another")
	}
}

// Murmur2 is franz-go's default partitioner (and the Java client's).
func TestMurmur2IsFranzGoDefault(t *testing.T) {
	def := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for i := range 2000 {
		key := []byte(fmt.Sprintf("order-%d", i))
		for _, n := range []int{1, 3, 6, 12, 24, 1000} {
			if got, want := partitioner.Murmur2.Partition(key, n), int32(def.Partition(&kgo.Record{Key: key}, n)); got != want {
				t.Fatalf("murmur2 %q over %d = %d, franz-go says %d", key, n, got, want)
			}
		}
	}
}

func TestKgo(t *testing.T) {
	for _, name := range []partitioner.Name{partitioner.Murmur2, partitioner.CRC32} {
		p := name.Kgo().ForTopic("t")
		for i := range 500 {
			key := []byte(fmt.Sprintf("o%d", i))
			if got, want := int32(p.Partition(&kgo.Record{Key: key}, 12)), name.Partition(key, 12); got != want {
				t.Fatalf("%v: Kgo puts %q in %d, Partition says %d", name, key, got, want)
			}
		}
	}
}

func TestMatch(t *testing.T) {
	const n = 12
	var both, crcOnly int
	for i := range 1000 {
		key := []byte(fmt.Sprintf("o%d", i))
		m, c := partitioner.Murmur2.Partition(key, n), partitioner.CRC32.Partition(key, n)
		if got := partitioner.Match(partitioner.Murmur2, key, m, n); got != partitioner.Murmur2 {
			t.Fatalf("Match(murmur2, %q, its murmur2 partition) = %v", key, got)
		}
		if got := partitioner.Match(partitioner.CRC32, key, c, n); got != partitioner.CRC32 {
			t.Fatalf("Match(crc32, %q, its crc32 partition) = %v", key, got)
		}
		if m == c {
			both++
			continue
		}
		crcOnly++
		if got := partitioner.Match(partitioner.Murmur2, key, c, n); got != partitioner.CRC32 {
			t.Fatalf("Match(murmur2, %q, its crc32 partition) = %v, want crc32", key, got)
		}
		other := (max(m, c) + 1) % n
		for other == m || other == c {
			other = (other + 1) % n
		}
		if got := partitioner.Match(partitioner.Murmur2, key, other, n); got != partitioner.None {
			t.Fatalf("Match(murmur2, %q, partition %d of neither) = %v, want none", key, other, got)
		}
	}
	if crcOnly == 0 || both == 0 {
		t.Fatalf("keys tell the partitioners apart %d times, agree %d: the test needs both", crcOnly, both)
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]partitioner.Name{
		"murmur2": partitioner.Murmur2, "MURMUR2": partitioner.Murmur2,
		"crc32": partitioner.CRC32, "consistent_random": partitioner.CRC32, "consistent": partitioner.CRC32,
	} {
		got, err := partitioner.Parse(s)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", s, got, err, want)
		}
		if err == nil && got.String() != "murmur2" && got.String() != "crc32" {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	for _, s := range []string{"", "random", "fnv1a", "murmur2_random"} {
		if _, err := partitioner.Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func TestPartitionAllocs(t *testing.T) {
	key := []byte("order-123456")
	var sink int32
	if n := testing.AllocsPerRun(1000, func() {
		sink += partitioner.Match(partitioner.Murmur2, key, 3, 12).Partition(key, 12)
		sink += partitioner.CRC32.Partition(key, 12)
	}); n != 0 {
		t.Fatalf("%v allocations per check, want 0", n)
	}
	_ = sink
}

func BenchmarkPartition(b *testing.B) {
	key := []byte("order-0000123456")
	for _, name := range []partitioner.Name{partitioner.Murmur2, partitioner.CRC32} {
		b.Run(name.String(), func(b *testing.B) {
			b.ReportAllocs()
			var sink int32
			for b.Loop() {
				sink += name.Partition(key, 12)
			}
			_ = sink
		})
	}
}
