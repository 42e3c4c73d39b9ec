package processor

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Output records must fit their topic: a record larger than the topic's
// max.message.bytes is refused (by the client, or by the broker), and a
// batch that cannot produce one of its records can never commit. So the
// processor reads each output topic's max.message.bytes when a session
// starts, gives the producer the same limit per topic, and checks every
// record it builds against it before handing it over: an outcome that does
// not fit becomes a smaller outcome (rejections.go).
const (
	// batchOverhead is the bytes a record batch of one record adds to the
	// record itself, as Kafka counts them against max.message.bytes (the
	// log overhead and the batch header, 61 bytes), plus the 4 bytes of
	// array length that franz-go counts in its own batch limit.
	batchOverhead = 4 + 61
	// recordOverhead bounds a record's own framing beyond its key, value
	// and headers: its length, attributes, timestamp and offset deltas, and
	// the length prefixes, each at its largest varint size.
	recordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5
	// headerOverhead bounds a header's framing beyond its key and value.
	headerOverhead = 5 + 5

	// minRecordLimit is the smallest max.message.bytes the processor runs
	// with on an output topic: under it, not even a dead letter without the
	// input's key and value (its error and source headers) is sure to fit.
	minRecordLimit = 4096
	// defaultRecordLimit is Kafka's default message.max.bytes, for a topic
	// whose config does not say.
	defaultRecordLimit = 1048588
)

// framedSize bounds the bytes r takes in a record batch of its own.
func framedSize(r *kgo.Record) int {
	n := batchOverhead + recordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += headerOverhead + len(h.Key) + len(h.Value)
	}
	return n
}

// recordLimits is the max.message.bytes of each output topic.
type recordLimits map[string]int

// fits reports whether r fits its topic.
func (l recordLimits) fits(r *kgo.Record) bool {
	return framedSize(r) <= l.of(r.Topic)
}

// of returns topic's limit.
func (l recordLimits) of(topic string) int {
	if n, ok := l[topic]; ok {
		return n
	}
	return defaultRecordLimit
}

// batchMax is the producer's per-topic batch limit (kgo.ProducerBatchMaxBytesFn).
func (l recordLimits) batchMax(topic string) int32 {
	return int32(min(l.of(topic), 1<<30))
}

// outputTopics are the topics the processor produces to.
func (p *Processor) outputTopics() []string {
	return []string{p.cfg.Topics.Status, p.cfg.Topics.Rejections, p.cfg.Topics.DLQ, p.changelog}
}

// readRecordLimits reads the max.message.bytes of every output topic. A
// topic under minRecordLimit is a layout error.
func readRecordLimits(ctx context.Context, adm *kadm.Client, topics []string) (recordLimits, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describing the output topics' configs: %w", err)
	}
	l := make(recordLimits, len(topics))
	for _, t := range topics {
		rc, err := rcs.On(t, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return nil, fmt.Errorf("describing topic %s: %w", t, err)
		}
		n := defaultRecordLimit
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				v, err := strconv.Atoi(*c.Value)
				if err != nil {
					return nil, fmt.Errorf("topic %s: max.message.bytes=%q: %w", t, *c.Value, err)
				}
				n = v
			}
		}
		if n < minRecordLimit {
			return nil, fmt.Errorf("%w: topic %s has max.message.bytes=%d; orderflow needs at least %d on every output topic "+
				"(raise it with: kafka-configs --alter --entity-type topics --entity-name %s --add-config max.message.bytes=1048588)",
				ErrTopology, t, n, minRecordLimit, t)
		}
		l[t] = n
	}
	return l, nil
}
