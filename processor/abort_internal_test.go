package processor

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAbandonedBatchSaysWhy: a batch given records of a partition that is
// not restored yet is abandoned, and the error that ends the session says
// so, naming the partition; the first reason is the one kept.
func TestAbandonedBatchSaysWhy(t *testing.T) {
	p, err := New(Config{Brokers: []string{"unused:9092"}, StateDir: t.TempDir(), Guarantee: AtLeastOnce})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.parts[3] = &partition{thread: 0}
	b := newBatch(p.changelog, newOutputMemory(), p.leaves, nil)
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "events", Partitions: []kgo.FetchPartition{
		{Partition: 3, Records: []*kgo.Record{{Topic: "events", Partition: 3, Value: []byte("x")}}},
	}}}}}
	p.processFetches(nil, 0, b, fs)
	b.abortFor("a later reason")
	c := &asyncCommitter{p: p}
	_, err = c.end(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "batch abandoned (records of partition 3, not restored yet)") {
		t.Fatalf("end of the batch: %v, want it to say the partition was not restored", err)
	}
}
