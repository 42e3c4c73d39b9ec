package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The state is partitioned like the input: changelog partition p holds the
// orders whose events are in input partition p, which producers choose by
// hashing the order ID over the input's partition count. When partitions
// are added to the input, producers route by the new count as soon as they
// see it: an existing order's next event can land in a partition whose
// state does not have the order (refused as unknown_order, for good). So
// the processor stops before it commits any batch read under a changed
// count:
//
//   - a watcher asks the brokers for the input's partition count every
//     layoutCheckInterval;
//   - a record whose key does not hash (murmur2, the Java producer's
//     default) to the partition it is in under the count the instance
//     started with may have been routed by a new count: the batch that
//     read it is ended only after a check made then (producers that
//     partition otherwise, e.g. librdkafka's CRC32, cost one metadata
//     request per batch);
//   - a batch is ended only if no check found a change; if one did, it is
//     aborted (exactly_once) or not committed (at_least_once), and the
//     instance stops with ErrTopology.
//
// The way forward is to move the state to the new layout with `orderflow
// repartition` (repartition.go), with every instance stopped.

// layoutCheckInterval is how often the input's partition count is read.
const layoutCheckInterval = time.Second

// adminMetadataAge is how old the admin client's cached answers about
// topics may be (kgo.MetadataMinAge).
const adminMetadataAge = 250 * time.Millisecond

// layoutFailure is the error a batch ends with when the layout could not
// be confirmed: fatal if it changed, else a failed session (retried).
func layoutFailure(err error) error {
	if errors.Is(err, ErrTopology) {
		return fmt.Errorf("%w: %w", ErrFatal, err)
	}
	return err
}

// layout watches the input topic's partition count.
type layout struct {
	topic      string
	partitions int // when the instance started
	hash       kgo.TopicPartitioner

	mu  sync.Mutex
	err error // set once a check found a change
}

func newLayout(topic string, partitions int) *layout {
	return &layout{topic: topic, partitions: partitions, hash: kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
}

// misrouted reports whether r's key does not hash to its partition under
// the count the instance started with.
func (l *layout) misrouted(r *kgo.Record) bool {
	return r.Key != nil && int32(l.hash.Partition(r, l.partitions)) != r.Partition
}

// failed returns the change a check found, if any.
func (l *layout) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// check reads the input's partition count and returns an ErrTopology error
// if it changed.
func (p *Processor) checkLayout(ctx context.Context) error {
	l := p.layout
	// A request of its own: kadm's ListTopics may answer from the client's
	// cache, up to adminMetadataAge old.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(l.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, p.admCl)
	if err == nil && len(resp.Topics) != 1 {
		err = fmt.Errorf("%d topics in the answer", len(resp.Topics))
	}
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("reading the partition count of %s: %w", l.topic, err)
	}
	n := len(resp.Topics[0].Partitions)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if n != l.partitions {
		l.err = fmt.Errorf("%w: input topic %s now has %d partitions, it had %d when this instance started: "+
			"its state is partitioned like the input, so it stops before processing any event routed by the new count. "+
			"Stop every instance, then move the state to %d partitions with `orderflow repartition --app-id %s --partitions %d` "+
			"(README: \"Changing the input's partition count\")",
			ErrTopology, l.topic, n, l.partitions, n, p.cfg.AppID, n)
		return l.err
	}
	return nil
}

// watchLayout checks the layout every layoutCheckInterval until ctx ends
// (nil) or a check finds a change (its error).
func (p *Processor) watchLayout(ctx context.Context) error {
	t := time.NewTicker(layoutCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := p.checkLayout(ctx)
		if err == nil || ctx.Err() != nil {
			continue
		}
		if p.layout.failed() != nil {
			return err
		}
		p.log.Warn("checking the input's partition count failed; retrying", "err", err)
	}
}

// layoutHolds returns nil if a batch may be ended: no check found a
// change, and, if the batch read a record that hashes elsewhere
// (misrouted), a check made now finds none either.
func (p *Processor) layoutHolds(ctx context.Context, misrouted bool) error {
	if p.layout == nil {
		return nil
	}
	if err := p.layout.failed(); err != nil || !misrouted {
		return err
	}
	return p.checkLayout(ctx)
}
