package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/internal/ksession"
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

// ceilingChunk is how many input records the ceiling processes before it
// hands their output records to the client, as orderflow's processRecords
// does, so that the ceiling's produce path runs as orderflow's does.
const ceilingChunk = 128

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

// ceilingTxnTimeout is the transactional ceiling's transaction timeout:
// orderflow's default, which the bench's orderflow runs use.
var ceilingTxnTimeout = processor.DefaultConfig().TransactionTimeout

// ceilingSessionTimeout is orderflow's default group session timeout.
var ceilingSessionTimeout = processor.DefaultConfig().SessionTimeout

// runCeilingSession is one loop of the ceiling program.
func runCeilingSession(ctx context.Context, c ceilingConfig, session int) error {
	maxBatch := c.maxBatch
	// The session client orderflow runs (the extra options first, as
	// orderflow takes them).
	o := ksession.Options{
		Opts:            append([]kgo.Opt{kgo.SeedBrokers(c.brokers...), kgo.ClientID(c.group)}, c.extra...),
		Group:           c.group,
		Input:           c.input,
		Changelog:       c.changelog,
		SessionTimeout:  ceilingSessionTimeout,
		MaxBatchRecords: maxBatch,
		OnAssigned: func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			c.assigned.Add(int32(len(m[c.input])))
		},
		OnRevoked: func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			c.assigned.Add(-int32(len(m[c.input])))
		},
	}
	if c.transactional {
		o.TransactionalID, o.TransactionTimeout = c.group+"-"+strconv.Itoa(session), ceilingTxnTimeout
	}
	s, err := ksession.New(o)
	if err != nil {
		return err
	}
	defer s.Close()
	sess, cl := s.Txn, s.Client

	off := 0
	value := func(n int32) []byte {
		if off+int(n) > len(c.payload) {
			off = 0
		}
		v := c.payload[off : off+int(n) : off+int(n)]
		off += int(n)
		return v
	}
	// cb is one batch: its records' promises and the offsets after it.
	type cb struct {
		produced sync.WaitGroup
		err      atomic.Pointer[error]
		promise  func(*kgo.Record, error)
		next     map[int32]kgo.EpochOffset
		n        int
	}
	newBatch := func() *cb {
		b := &cb{next: map[int32]kgo.EpochOffset{}}
		b.promise = func(_ *kgo.Record, err error) {
			if err != nil {
				b.err.CompareAndSwap(nil, &err)
			}
			b.produced.Done()
		}
		return b
	}
	var pending []*kgo.Record
	process := func(b *cb, fs kgo.Fetches) (err error) {
		fs.EachError(func(_ string, _ int32, e error) {
			if errors.Is(e, kgo.ErrClientClosed) {
				err = e
			}
		})
		// As orderflow's processRecords, the records go to the client
		// ceilingChunk input records at a time.
		produce := func(r *kgo.Record) { pending = append(pending, r) }
		flush := func() {
			b.produced.Add(len(pending))
			for _, r := range pending {
				cl.Produce(context.Background(), r, b.promise)
			}
			clear(pending)
			pending = pending[:0]
		}
		defer flush()
		taken := 0 // input records of this poll
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				last := p.Records[n-1]
				b.next[p.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if taken > 0 && taken%ceilingChunk == 0 {
				flush()
			}
			taken++
			b.n++
			s, ok := c.sizes(r)
			if !ok {
				err = fmt.Errorf("ceiling: no sizes for %s/%d@%d", r.Topic, r.Partition, r.Offset)
				return
			}
			// Outputs carry their input's timestamp, as orderflow's do (and
			// the latency measurement reads the input time off them): a
			// record without one would cost the client a time.Now.
			ts := r.Timestamp
			switch s.kind {
			case kindAccepted:
				cr := &kgo.Record{Topic: c.changelog, Partition: r.Partition, Key: r.Key, Value: value(s.changelog), Timestamp: ts}
				if !c.transactional {
					cr.Headers = []kgo.RecordHeader{{Key: processor.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)}}
				}
				produce(cr)
				produce(&kgo.Record{Topic: c.topics.Status, Key: r.Key, Value: value(s.output), Timestamp: ts})
			case kindRejected:
				produce(&kgo.Record{Topic: c.topics.Rejections, Key: r.Key, Value: value(s.output), Timestamp: ts})
			default:
				produce(&kgo.Record{Topic: c.topics.DLQ, Key: r.Key, Value: value(s.output), Timestamp: ts, Headers: []kgo.RecordHeader{
					{Key: processor.HeaderError, Value: []byte("avro: decode OrderEvent: unknown framing")},
					{Key: processor.HeaderSourceTopic, Value: []byte(r.Topic)},
					{Key: processor.HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
					{Key: processor.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
				}})
			}
		})
		return err
	}

	// Without transactions a batch is committed in the background, as
	// orderflow's at_least_once does (processor's asyncCommitter): once the
	// client has delivered the batch's records, its offsets; the next batch
	// runs meanwhile and waits for that commit before it is committed in
	// turn.
	var inflight chan error
	waitCommit := func() error {
		if inflight == nil {
			return nil
		}
		err := <-inflight
		inflight = nil
		return err
	}
	defer waitCommit() //nolint:errcheck // the loop has ended
	commit := func(b *cb) error {
		endCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan struct{})
		go func() { b.produced.Wait(); close(done) }()
		select {
		case <-done:
		case <-endCtx.Done():
			return fmt.Errorf("ceiling: flush: %w", endCtx.Err())
		}
		if p := b.err.Load(); p != nil {
			return fmt.Errorf("ceiling: produce: %w", *p)
		}
		if cerr := ksession.CommitOffsets(endCtx, cl, c.input, b.next); cerr != nil {
			return fmt.Errorf("ceiling: commit: %w", cerr)
		}
		c.committed.Add(int64(b.n))
		return nil
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
		b := newBatch()
		if err := process(b, fs); err != nil {
			return err
		}
		deadline := time.Now().Add(c.commitInterval)
		for b.n < maxBatch && ctx.Err() == nil {
			pctx, cancel := context.WithDeadline(ctx, deadline)
			fs := cl.PollRecords(pctx, maxBatch-b.n)
			cancel()
			if err := process(b, fs); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				break
			}
		}
		if sess == nil {
			if err := waitCommit(); err != nil {
				return err
			}
			done := make(chan error, 1)
			go func() { done <- commit(b) }()
			inflight = done
			continue
		}
		endCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		committed, err := sess.End(endCtx, kgo.TryCommit)
		cancel()
		if err != nil {
			return fmt.Errorf("ceiling: end: %w", err)
		}
		if committed {
			c.committed.Add(int64(b.n))
		} else {
			c.aborted.Add(1)
		}
	}
}
