package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/orderflow/orderflow/internal/ksession"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newSessionClient makes the Kafka client of one session of thread i and
// its committer: a GroupTransactSession under exactly_once, a plain group
// client under at_least_once; and the output topics' record limits it was
// made with.
func (p *Processor) newSessionClient(ctx context.Context, i int) (c committer, cl *kgo.Client, limits recordLimits, err error) {
	// Read at every session: a failed batch (a record the broker refused
	// as too large) starts a new session, which sees a changed limit.
	limits, err = readRecordLimits(ctx, p.adm, p.outputTopics())
	if err != nil {
		if errors.Is(err, ErrTopology) {
			return nil, nil, limits, fmt.Errorf("%w: %w", ErrFatal, err)
		}
		return nil, nil, limits, err
	}
	revoked := func(_ context.Context, _ *kgo.Client, m map[string][]int32) { p.onRevoked(i, m) }
	o := ksession.Options{
		Opts:            append(p.connOptsAs(p.threadClientID(i)), kgo.ProducerBatchMaxBytesFn(limits.batchMax)),
		Group:           p.cfg.AppID,
		Input:           p.cfg.Topics.Events,
		Changelog:       p.changelog,
		SessionTimeout:  p.cfg.SessionTimeout,
		MaxBatchRecords: p.cfg.MaxBatchRecords,
		OnAssigned:      func(_ context.Context, cl *kgo.Client, m map[string][]int32) { p.onAssigned(i, cl, m) },
		OnRevoked:       revoked,
		OnLost:          revoked,
	}
	if p.sb != nil {
		o.Balancers = p.sb.balancers()
	}
	if i == 0 {
		o.Opts = append(o.Opts, kgo.WithHooks(p.m.kafkaHooks())) // client metrics (metrics.go), of the first thread
	}
	if p.cfg.Guarantee == ExactlyOnce {
		o.TransactionalID, o.TransactionTimeout = p.transactionalID(i), p.cfg.TransactionTimeout
	}
	s, err := ksession.New(o)
	if err != nil {
		return nil, nil, limits, fmt.Errorf("%w: kafka client: %w", ErrFatal, err)
	}
	if p.sb != nil && i == 0 {
		p.sb.setClient(s.Client)
	}
	if s.Txn != nil {
		return &txnCommitter{p: p, thread: i, sess: s.Txn, mem: newOutputMemory()}, s.Client, limits, nil
	}
	return &asyncCommitter{p: p, cl: s.Client, thread: i, mems: [2]*outputMemory{newOutputMemory(), newOutputMemory()}}, s.Client, limits, nil
}
