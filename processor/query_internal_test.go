package processor

import (
	"fmt"
	"testing"

	"github.com/orderflow/orderflow/internal/kafkatest"
)

// TestPartitionOfIsKafkasDefault: the partition the HTTP API looks an order
// up in is the one Kafka's default partitioner gives the order's events (the
// HTTP API's tests confirm that the producers use that partitioner).
func TestPartitionOfIsKafkasDefault(t *testing.T) {
	for _, n := range []int{1, 3, 12, 100} {
		for i := range 1000 {
			id := fmt.Sprintf("order-%d", i)
			if got, want := partitionOf(id, n), kafkatest.PartitionOf(id, n); got != want {
				t.Fatalf("partitionOf(%q, %d) = %d, Kafka's default partitioner says %d", id, n, got, want)
			}
		}
	}
	if got := partitionOf("x", 0); got != -1 {
		t.Errorf("partitionOf with no partitions = %d, want -1", got)
	}
}
