package ksession

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLinger checks the producer's linger: the transaction timeout, capped
// at franz-go's longest, for a transactional client; none for a plain one.
func TestLinger(t *testing.T) {
	for _, c := range []struct {
		transactional bool
		timeout, want time.Duration
	}{
		{true, 10 * time.Second, 10 * time.Second},
		{true, 5 * time.Minute, maxLinger},
		{false, 10 * time.Second, 0},
	} {
		if got := linger(c.transactional, c.timeout); got != c.want {
			t.Errorf("linger(%v, %v) = %v, want %v", c.transactional, c.timeout, got, c.want)
		}
	}
}

// TestPartitioner checks that changelog records keep the partition set on
// them and every other record goes by its key's hash.
func TestPartitioner(t *testing.T) {
	p := partitioner{"changelog", kgo.ManualPartitioner(), kgo.StickyKeyPartitioner(nil)}
	byKey := kgo.StickyKeyPartitioner(nil).ForTopic("status")
	for i := range 20 {
		r := &kgo.Record{Topic: "changelog", Key: []byte{byte(i)}, Partition: int32(i % 7)}
		if got := p.ForTopic("changelog").Partition(r, 7); got != int(r.Partition) {
			t.Fatalf("changelog record set to partition %d went to %d", r.Partition, got)
		}
		s := &kgo.Record{Topic: "status", Key: []byte{byte(i)}, Partition: 6}
		if got, want := p.ForTopic("status").Partition(s, 7), byKey.Partition(s, 7); got != want {
			t.Fatalf("status record of key %d went to %d, want %d (by key)", i, got, want)
		}
	}
}
