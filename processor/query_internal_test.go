package processor

import (
	"fmt"
	"testing"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/partitioner"
)

// TestPartitionsIsKafkasDefault: the partition the HTTP API looks an order
// up in first is the one Kafka's default partitioner gives the order's
// events (the HTTP API's tests confirm that the producers use that
// partitioner), and the second, if any, is librdkafka's.
func TestPartitionsIsKafkasDefault(t *testing.T) {
	p := &Processor{routing: newRouting(partitioner.None)}
	for _, n := range []int{1, 3, 12, 100} {
		for i := range 1000 {
			id := fmt.Sprintf("order-%d", i)
			got := p.Partitions(id, n)
			if len(got) == 0 || got[0] != kafkatest.PartitionOf(id, n) {
				t.Fatalf("Partitions(%q, %d) = %v, Kafka's default partitioner says %d first", id, n, got, kafkatest.PartitionOf(id, n))
			}
			crc := partitioner.CRC32.Partition([]byte(id), n)
			if want := crc != got[0]; want != (len(got) == 2) || (want && got[1] != crc) {
				t.Fatalf("Partitions(%q, %d) = %v, want the CRC32 partition %d second when it differs", id, n, got, crc)
			}
		}
	}
	if got := p.Partitions("x", 0); got != nil {
		t.Errorf("Partitions with no partitions = %v, want none", got)
	}
}
