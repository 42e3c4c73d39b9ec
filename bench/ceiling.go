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
	// endIdle ends a batch when the client holds no fetched records, as
	// orderflow's Config.EndIdleBatches.
	endIdle   bool
	maxBatch  int
	topics    processor.Topics // Status, Rejections, DLQ
	changelog string
	// sizes returns the out sizes of an input record.
	sizes func(r *kgo.Record) (outSizes, bool)
	// payload is what values are cut from, in turn; at least as long as
	// the longest value.
	payload []byte

	extra []kgo.Opt // more client options: the latency measurement's hooks

	// sessions is how many consume -> produce loops (group members, each
	// with its own client and transactional id) run side by side: the same
	// as orderflow's threads, so the ceiling has the same concurrency.
	sessions int

	committed *atomic.Int64 // input records committed
	aborted   *atomic.Int64 // transactions aborted (the batch is read again)
	assigned  *atomic.Int32 // partitions owned now
}

// ceilingPayload is what the ceiling's values are cut from: their bytes do
// not matter, as neither orderflow nor the ceiling compresses its batches.
var ceilingPayload = make([]byte, 1<<20)

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
	return (&ceilingSession{c: c, cl: s.Client, sess: s.Txn}).run(ctx)
}

// ceilingSession is one loop of the ceiling program, on its client.
type ceilingSession struct {
	c       ceilingConfig
	cl      *kgo.Client
	sess    *kgo.GroupTransactSession // nil without transactions
	off     int                       // where the next value is cut from the payload
	pending []*kgo.Record             // output records not yet given to the client
	// inflight is the background commit of the last batch (no
	// transactions), nil if none runs.
	inflight chan error
}

// ceilingBatch is one batch: its records' promises and the offsets after it.
type ceilingBatch struct {
	produced sync.WaitGroup
	err      atomic.Pointer[error]
	next     map[int32]kgo.EpochOffset
	n        int
}

func (b *ceilingBatch) promise(_ *kgo.Record, err error) {
	if err != nil {
		b.err.CompareAndSwap(nil, &err)
	}
	b.produced.Done()
}

func (s *ceilingSession) run(ctx context.Context) error {
	defer s.waitCommit() //nolint:errcheck // the loop has ended
	for {
		fs := s.cl.PollRecords(ctx, s.c.maxBatch)
		if ctx.Err() != nil {
			return nil
		}
		if fs.Empty() {
			continue
		}
		if s.sess != nil {
			if err := s.sess.Begin(); err != nil {
				return fmt.Errorf("ceiling: begin: %w", err)
			}
		}
		b := &ceilingBatch{next: map[int32]kgo.EpochOffset{}}
		if err := s.fill(ctx, b, fs); err != nil {
			return err
		}
		if err := s.end(b); err != nil {
			return err
		}
	}
}

// fill processes fs and polls more into b until the batch is full or the
// commit interval has passed.
func (s *ceilingSession) fill(ctx context.Context, b *ceilingBatch, fs kgo.Fetches) error {
	if err := s.process(b, fs); err != nil {
		return err
	}
	deadline := time.Now().Add(s.c.commitInterval)
	for b.n < s.c.maxBatch && ctx.Err() == nil {
		if s.c.endIdle && s.cl.BufferedFetchRecords() == 0 {
			break
		}
		pctx, cancel := context.WithDeadline(ctx, deadline)
		fs := s.cl.PollRecords(pctx, s.c.maxBatch-b.n)
		cancel()
		if err := s.process(b, fs); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			break
		}
	}
	return nil
}

// end ends b: its transaction, or without transactions its commit in the
// background, as orderflow's at_least_once does (processor's asyncCommitter):
// once the client has delivered the batch's records, its offsets; the next
// batch runs meanwhile and waits for that commit before it is committed in
// turn.
func (s *ceilingSession) end(b *ceilingBatch) error {
	if s.sess == nil {
		if err := s.waitCommit(); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- s.commit(b) }()
		s.inflight = done
		return nil
	}
	endCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	committed, err := s.sess.End(endCtx, kgo.TryCommit)
	cancel()
	if err != nil {
		return fmt.Errorf("ceiling: end: %w", err)
	}
	if committed {
		s.c.committed.Add(int64(b.n))
	} else {
		s.c.aborted.Add(1)
	}
	return nil
}

func (s *ceilingSession) waitCommit() error {
	if s.inflight == nil {
		return nil
	}
	err := <-s.inflight
	s.inflight = nil
	return err
}

// commit commits b's offsets once its records are delivered.
func (s *ceilingSession) commit(b *ceilingBatch) error {
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
	if err := ksession.CommitOffsets(endCtx, s.cl, s.c.input, b.next); err != nil {
		return fmt.Errorf("ceiling: commit: %w", err)
	}
	s.c.committed.Add(int64(b.n))
	return nil
}

// value cuts the next n bytes off the payload.
func (s *ceilingSession) value(n int32) []byte {
	if s.off+int(n) > len(s.c.payload) {
		s.off = 0
	}
	v := s.c.payload[s.off : s.off+int(n) : s.off+int(n)]
	s.off += int(n)
	return v
}

// flush hands the pending records to the client.
func (s *ceilingSession) flush(b *ceilingBatch) {
	b.produced.Add(len(s.pending))
	promise := b.promise // one method value for them all
	for _, r := range s.pending {
		s.cl.Produce(context.Background(), r, promise)
	}
	clear(s.pending)
	s.pending = s.pending[:0]
}

// process adds fs to b: per input record, the records orderflow would
// produce, ceilingChunk input records at a time, as orderflow's
// processRecords hands them to the client.
func (s *ceilingSession) process(b *ceilingBatch, fs kgo.Fetches) (err error) {
	fs.EachError(func(_ string, _ int32, e error) {
		if errors.Is(e, kgo.ErrClientClosed) {
			err = e
		}
	})
	defer s.flush(b)
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			last := p.Records[n-1]
			b.next[p.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
		}
	})
	taken := 0 // input records of this poll
	fs.EachRecord(func(r *kgo.Record) {
		if taken > 0 && taken%ceilingChunk == 0 {
			s.flush(b)
		}
		taken++
		b.n++
		if e := s.outputs(r); e != nil {
			err = e
		}
	})
	return err
}

// outputs adds the records orderflow would produce for r to the pending
// ones. They carry r's timestamp, as orderflow's do (and the latency
// measurement reads the input time off them): a record without one would
// cost the client a time.Now.
func (s *ceilingSession) outputs(r *kgo.Record) error {
	sz, ok := s.c.sizes(r)
	if !ok {
		return fmt.Errorf("ceiling: no sizes for %s/%d@%d", r.Topic, r.Partition, r.Offset)
	}
	ts, c := r.Timestamp, &s.c
	switch sz.kind {
	case kindAccepted:
		cr := &kgo.Record{Topic: c.changelog, Partition: r.Partition, Key: r.Key, Value: s.value(sz.changelog), Timestamp: ts}
		if !c.transactional {
			cr.Headers = []kgo.RecordHeader{{Key: processor.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)}}
		}
		s.pending = append(s.pending, cr,
			&kgo.Record{Topic: c.topics.Status, Key: r.Key, Value: s.value(sz.output), Timestamp: ts})
	case kindRejected:
		s.pending = append(s.pending, &kgo.Record{Topic: c.topics.Rejections, Key: r.Key, Value: s.value(sz.output), Timestamp: ts})
	default:
		s.pending = append(s.pending, &kgo.Record{Topic: c.topics.DLQ, Key: r.Key, Value: s.value(sz.output), Timestamp: ts, Headers: []kgo.RecordHeader{
			{Key: processor.HeaderError, Value: []byte("avro: decode OrderEvent: unknown framing")},
			{Key: processor.HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: processor.HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
			{Key: processor.HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		}})
	}
	return nil
}
