// Package kread reads a Kafka topic to its end with read_committed: the
// one implementation behind the demo's summary and the test harness.
package kread

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadCommitted calls fn for every record of topic, from the start to the last
// stable offset seen at the call, reading with read_committed. Transaction
// markers occupy offsets, so the end is where the consumer's position
// reaches the last stable offset (markers are kept to see that), never "the
// last record's offset + 1".
func ReadCommitted(ctx context.Context, brokers []string, opts []kgo.Opt, topic string, fn func(*kgo.Record) error) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// ListCommittedOffsets lists under read_committed: the last stable
	// offsets.
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the start offsets of %s: %w", topic, err)
	}
	end := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > s.Offset {
			end[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	if len(end) == 0 {
		return nil
	}
	rd, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
	}, opts...)...)
	if err != nil {
		return err
	}
	defer rd.Close()
	for len(end) > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = fmt.Errorf("reading %s partition %d: %w", topic, p, err) })
		if ferr != nil {
			return ferr
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			e, ok := end[r.Partition]
			if !ok || r.Offset >= e {
				continue
			}
			if !r.Attrs.IsControl() {
				if err := fn(r); err != nil {
					return err
				}
			}
			if r.Offset+1 >= e {
				delete(end, r.Partition)
			}
		}
	}
	return nil
}
