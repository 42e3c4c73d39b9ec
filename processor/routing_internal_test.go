package processor

import (
	"fmt"
	"testing"

	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRoutingDetects: left to detect, the processor switches to the
// partitioner the committed records show and says so once; told one, it
// keeps it and warns once when the records contradict it.
func TestRoutingDetects(t *testing.T) {
	const n = 12
	tally := func(rt *routing, by partitioner.Name, records int) *counts {
		c := &counts{}
		for i := range records {
			key := []byte(fmt.Sprintf("order-%d", i))
			placed := rt.place(&kgo.Record{Key: key, Partition: by.Partition(key, n)}, n)
			c.placed[placed]++
			if placed != rt.partitioner() {
				c.mismatched++
			}
		}
		return c
	}

	rt := newRouting(partitioner.None)
	if rt.partitioner() != partitioner.Murmur2 {
		t.Fatalf("detecting: starts with %v, want murmur2", rt.partitioner())
	}
	if msg, _, warn := rt.add(tally(rt, partitioner.Murmur2, 50)); msg == "" || warn {
		t.Fatalf("first murmur2 batch: message %q (warning %v), want one info line", msg, warn)
	}
	if msg, _, _ := rt.add(tally(rt, partitioner.Murmur2, 50)); msg != "" {
		t.Fatalf("second batch logs again: %q", msg)
	}

	rt = newRouting(partitioner.None)
	msg, _, warn := rt.add(tally(rt, partitioner.CRC32, 100))
	if rt.partitioner() != partitioner.CRC32 || msg == "" || !warn {
		t.Fatalf("crc32 records: uses %v, message %q (warning %v); want crc32, one warning", rt.partitioner(), msg, warn)
	}
	placed, mismatched, shown := rt.snapshot()
	if shown != partitioner.CRC32 || placed[partitioner.CRC32] == 0 || mismatched == 0 {
		t.Fatalf("snapshot: placed %v, mismatched %d, shown %v", placed, mismatched, shown)
	}
	// Once crc32 is in use, crc32 records are no mismatch.
	if c := tally(rt, partitioner.CRC32, 100); c.mismatched != 0 {
		t.Fatalf("%d mismatches with crc32 in use", c.mismatched)
	}

	rt = newRouting(partitioner.Murmur2)
	msg, _, warn = rt.add(tally(rt, partitioner.CRC32, 100))
	if rt.partitioner() != partitioner.Murmur2 || msg == "" || !warn {
		t.Fatalf("configured murmur2, crc32 records: uses %v, message %q (warning %v); want murmur2 kept, one warning", rt.partitioner(), msg, warn)
	}
	if msg, _, _ := rt.add(tally(rt, partitioner.CRC32, 100)); msg != "" {
		t.Fatalf("the contradiction is logged again: %q", msg)
	}
}

// TestRoutingPlaceAllocs: the per-record check allocates nothing.
func TestRoutingPlaceAllocs(t *testing.T) {
	rt := newRouting(partitioner.None)
	r := &kgo.Record{Key: []byte("order-123456"), Partition: 5}
	var sink partitioner.Name
	if n := testing.AllocsPerRun(1000, func() { sink = rt.place(r, 12) }); n != 0 {
		t.Fatalf("place allocates %v times a record, want 0", n)
	}
	_ = sink
}

// TestRoutingWarnsNeither: records neither partitioner placed (a custom
// partitioner) are reported once.
func TestRoutingWarnsNeither(t *testing.T) {
	rt := newRouting(partitioner.None)
	c := &counts{}
	c.placed[partitioner.None] = 10
	if msg, _, warn := rt.add(c); !warn || msg == "" {
		t.Fatalf("records of neither partitioner: message %q (warning %v), want a warning", msg, warn)
	}
	if msg, _, _ := rt.add(c); msg != "" {
		t.Fatalf("warned again: %q", msg)
	}
}
