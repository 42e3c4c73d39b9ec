package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// newSessionClient makes the Kafka client of one session of thread i: a
// GroupTransactSession under exactly_once (sess and its client cl), a plain
// group client under at_least_once (sess nil), and the output topics'
// record limits it was made with.
func (p *Processor) newSessionClient(ctx context.Context, i int) (sess *kgo.GroupTransactSession, cl *kgo.Client, limits recordLimits, err error) {
	// Read at every session: a failed batch (a record the broker refused
	// as too large) starts a new session, which sees a changed limit.
	limits, err = readRecordLimits(ctx, p.adm, p.outputTopics())
	if err != nil {
		if errors.Is(err, ErrTopology) {
			return nil, nil, limits, fmt.Errorf("%w: %w", ErrFatal, err)
		}
		return nil, nil, limits, err
	}
	opts := append(p.connOpts(),
		kgo.ProducerBatchMaxBytesFn(limits.batchMax),
		kgo.ConsumerGroup(p.cfg.AppID),
		kgo.ConsumeTopics(p.cfg.Topics.Events),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.HeartbeatInterval(max(p.cfg.SessionTimeout/10, 100*time.Millisecond)),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, m map[string][]int32) { p.onAssigned(i, cl, m) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onRevoked(i, m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onRevoked(i, m) }),
		kgo.RecordPartitioner(newPartitioner(p.changelog)),
		kgo.MaxBufferedRecords(3*p.cfg.MaxBatchRecords+1000),
		kgo.ProducerLinger(OutputLinger(p.cfg.Guarantee, p.cfg.TransactionTimeout)),
		// Uncompressed, as the Java producer's default: orderflow's small
		// Avro records gain little from compression, and compressing them
		// here and decompressing them in the broker (which validates every
		// compressed batch) cost more CPU than the rest of the produce path,
		// where the CPU is the limit and the network is not.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		// A resumed partition (after its restore) joins the next fetch
		// request; a shorter long-poll makes that come sooner.
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if i == 0 {
		opts = append(opts, kgo.WithHooks(p.m.kafkaHooks())) // client metrics (metrics.go), of the first thread
	}
	if p.cfg.Guarantee == ExactlyOnce {
		opts = append(opts,
			kgo.TransactionalID(p.transactionalID(i)),
			kgo.TransactionTimeout(p.cfg.TransactionTimeout),
			kgo.RequireStableFetchOffsets(),
			ClassicTransactions(),
		)
		sess, err = kgo.NewGroupTransactSession(opts...)
		if err == nil {
			cl = sess.Client()
		}
	} else {
		cl, err = kgo.NewClient(opts...)
	}
	if err != nil {
		return nil, nil, limits, fmt.Errorf("%w: kafka client: %w", ErrFatal, err)
	}
	return sess, cl, limits, nil
}
