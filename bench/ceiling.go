package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/processor"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ceilingConfig configures the ceiling program: orderflow's consume ->
// produce loop with the same client settings, guarantee and commit interval,
// but no decoding, state or logic. Per input record it produces the records
// orderflow produces for it, of the same sizes (outSizes): changelog +
// status for an accepted event, a rejection for a refused one, a
// dead-letter copy for an undecodable one.
type ceilingConfig struct {
	brokers        []string
	input          string
	group          string // consumer group, also the transactional id's prefix
	transactional  bool
	commitInterval time.Duration
	maxBatch       int
	topics         processor.Topics // Status, Rejections, DLQ
	changelog      string
	// sizes returns the out sizes of an input record.
	sizes func(r *kgo.Record) (outSizes, bool)
	// copyTimestamp gives output records the input record's timestamp (the
	// latency measurement reads the input time off the outcome).
	copyTimestamp bool

	// payload is what values are cut from, in turn (real outputs, so
	// they compress as orderflow's do); at least 1 MiB.
	payload []byte

	extra []kgo.Opt // Options.ClientOpts

	// sessions is how many consume -> produce loops (group members, each
	// with its own client and transactional id) run side by side: the same
	// as orderflow's threads, so the ceiling has the same concurrency.
	sessions int

	committed *atomic.Int64 // input records committed
	aborted   *atomic.Int64 // transactions aborted (the batch is read again)
	assigned  *atomic.Int32 // partitions owned now
}

// sizesHeader carries an input record's outSizes (latency input of the
// ceiling only: a live input has no preloaded offsets to look up).
const sizesHeader = "orderflow.bench.sizes"

func appendSizes(b []byte, s outSizes) []byte {
	b = append(b, s.kind)
	b = binary.BigEndian.AppendUint32(b, uint32(s.changelog))
	return binary.BigEndian.AppendUint32(b, uint32(s.output))
}

func sizesFromHeader(r *kgo.Record) (outSizes, bool) {
	for _, h := range r.Headers {
		if h.Key == sizesHeader && len(h.Value) == 9 {
			return outSizes{
				kind:      h.Value[0],
				changelog: int32(binary.BigEndian.Uint32(h.Value[1:])),
				output:    int32(binary.BigEndian.Uint32(h.Value[5:])),
			}, true
		}
	}
	return outSizes{}, false
}

// runCeiling runs the ceiling program (c.sessions loops, at least one)
// until ctx is done or a loop fails.
func runCeiling(ctx context.Context, c ceilingConfig) error {
	n := max(c.sessions, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- runCeilingSession(ctx, c, i) }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// runCeilingSession is one loop of the ceiling program.
func runCeilingSession(ctx context.Context, c ceilingConfig, session int) error {
	maxBatch := c.maxBatch
	// Exactly processor.runSession's client options.
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID(c.group),
		kgo.ConsumerGroup(c.group),
		kgo.ConsumeTopics(c.input),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			c.assigned.Add(int32(len(m[c.input])))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			c.assigned.Add(-int32(len(m[c.input])))
		}),
		kgo.RecordPartitioner(ceilingPartitioner{c.changelog, kgo.ManualPartitioner(), kgo.StickyKeyPartitioner(nil)}),
		kgo.MaxBufferedRecords(3*maxBatch + 1000),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	opts = append(opts, c.extra...)
	var (
		sess *kgo.GroupTransactSession
		cl   *kgo.Client
		err  error
	)
	if c.transactional {
		opts = append(opts,
			kgo.TransactionalID(c.group+"-"+strconv.Itoa(session)),
			kgo.TransactionTimeout(10*time.Second),
			kgo.RequireStableFetchOffsets(),
			processor.ClassicTransactions(),
		)
		sess, err = kgo.NewGroupTransactSession(opts...)
		if err == nil {
			cl = sess.Client()
		}
	} else {
		cl, err = kgo.NewClient(opts...)
	}
	if err != nil {
		return err
	}
	defer func() {
		if sess != nil {
			sess.Close()
		} else {
			cl.Close()
		}
	}()

	off := 0
	value := func(n int32) []byte {
		if off+int(n) > len(c.payload) {
			off = 0
		}
		v := c.payload[off : off+int(n) : off+int(n)]
		off += int(n)
		return v
	}
	var produceErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			produceErr.CompareAndSwap(nil, &err)
		}
	}
	process := func(fs kgo.Fetches) (n int, err error) {
		fs.EachError(func(_ string, _ int32, e error) {
			if errors.Is(e, kgo.ErrClientClosed) {
				err = e
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			n++
			s, ok := c.sizes(r)
			if !ok {
				err = fmt.Errorf("ceiling: no sizes for %s/%d@%d", r.Topic, r.Partition, r.Offset)
				return
			}
			var ts time.Time
			if c.copyTimestamp {
				ts = r.Timestamp
			}
			switch s.kind {
			case kindAccepted:
				cr := &kgo.Record{Topic: c.changelog, Partition: r.Partition, Key: r.Key, Value: value(s.changelog), Timestamp: ts}
				if !c.transactional {
					cr.Headers = []kgo.RecordHeader{{Key: processor.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)}}
				}
				cl.Produce(context.Background(), cr, promise)
				cl.Produce(context.Background(), &kgo.Record{Topic: c.topics.Status, Key: r.Key, Value: value(s.output), Timestamp: ts}, promise)
			case kindRejected:
				cl.Produce(context.Background(), &kgo.Record{Topic: c.topics.Rejections, Key: r.Key, Value: value(s.output), Timestamp: ts}, promise)
			default:
				cl.Produce(context.Background(), &kgo.Record{Topic: c.topics.DLQ, Key: r.Key, Value: value(s.output), Timestamp: ts, Headers: []kgo.RecordHeader{
					{Key: processor.HeaderError, Value: []byte("avro: decode OrderEvent: unknown framing")},
					{Key: processor.HeaderSourceTopic, Value: []byte(r.Topic)},
					{Key: processor.HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
					{Key: processor.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
				}}, promise)
			}
		})
		return n, err
	}

	for {
		fs := cl.PollRecords(ctx, maxBatch)
		if ctx.Err() != nil {
			return nil
		}
		if fs.Empty() {
			continue
		}
		if sess != nil {
			if err := sess.Begin(); err != nil {
				return fmt.Errorf("ceiling: begin: %w", err)
			}
		}
		n, err := process(fs)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(c.commitInterval)
		for n < maxBatch && ctx.Err() == nil {
			pctx, cancel := context.WithDeadline(ctx, deadline)
			fs := cl.PollRecords(pctx, maxBatch-n)
			cancel()
			m, err := process(fs)
			if err != nil {
				return err
			}
			n += m
			if time.Now().After(deadline) {
				break
			}
		}
		endCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if sess != nil {
			committed, err := sess.End(endCtx, kgo.TryCommit)
			cancel()
			if err != nil {
				return fmt.Errorf("ceiling: end: %w", err)
			}
			if committed {
				c.committed.Add(int64(n))
			} else {
				c.aborted.Add(1)
			}
			continue
		}
		err = cl.Flush(endCtx)
		if err == nil {
			if p := produceErr.Load(); p != nil {
				err = *p
			}
		}
		if err == nil {
			err = cl.CommitUncommittedOffsets(endCtx)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("ceiling: commit: %w", err)
		}
		c.committed.Add(int64(n))
	}
}

// ceilingPartitioner is orderflow's: changelog records to the input
// record's partition, everything else by key.
type ceilingPartitioner struct {
	changelog     string
	manual, byKey kgo.Partitioner
}

func (p ceilingPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.changelog {
		return p.manual.ForTopic(topic)
	}
	return p.byKey.ForTopic(topic)
}
