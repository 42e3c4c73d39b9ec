// Package ksession makes the Kafka client of an orderflow session: one
// consumer group member that reads the input topic and produces the
// outputs, transactional under exactly_once. The processor makes its
// clients here, and so does the bench's ceiling program, so that the
// ceiling runs the client orderflow runs.
package ksession

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Options describe a session's client.
type Options struct {
	// Opts come first: the connection (seed brokers, client ID, TLS,
	// SASL, logger) and any other options of the caller. The session's
	// own options below override theirs.
	Opts []kgo.Opt

	Group string // the consumer group
	Input string // the topic the session consumes
	// Changelog is the topic whose records go to the partition set on
	// the record (the input record's: the changelog is co-partitioned
	// with the input); every other record goes by key, as the Java
	// client sends it.
	Changelog      string
	SessionTimeout time.Duration
	// MaxBatchRecords is the most input records a batch takes: the client
	// buffers as many output records as a few batches produce.
	MaxBatchRecords int

	// TransactionalID makes the client a transactional session
	// (exactly_once); "" makes a plain group client (at_least_once).
	TransactionalID    string
	TransactionTimeout time.Duration

	// Balancers are the group balancers, in order of preference. Default
	// (nil): franz-go's cooperative-sticky balancer alone.
	Balancers []kgo.GroupBalancer

	// The group callbacks; nil ones are not set.
	OnAssigned, OnRevoked, OnLost func(context.Context, *kgo.Client, map[string][]int32)
}

// Session is a session's client. Txn is its transactional session, nil
// for a plain group client.
type Session struct {
	Client *kgo.Client
	Txn    *kgo.GroupTransactSession
}

// Close closes the client, which leaves the group.
func (s Session) Close() {
	if s.Txn != nil {
		s.Txn.Close()
		return
	}
	s.Client.Close()
}

// New makes a session's client.
func New(o Options) (Session, error) {
	transactional := o.TransactionalID != ""
	balancers := o.Balancers
	if len(balancers) == 0 {
		balancers = []kgo.GroupBalancer{kgo.CooperativeStickyBalancer()}
	}
	opts := append(o.Opts[:len(o.Opts):len(o.Opts)],
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Input),
		kgo.Balancers(balancers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.HeartbeatInterval(max(o.SessionTimeout/10, 100*time.Millisecond)),
		kgo.RecordPartitioner(partitioner{o.Changelog, kgo.ManualPartitioner(), kgo.StickyKeyPartitioner(nil)}),
		kgo.MaxBufferedRecords(3*o.MaxBatchRecords+1000),
		kgo.ProducerLinger(linger(transactional, o.TransactionTimeout)),
		// Uncompressed, as the Java producer's default: orderflow's small
		// Avro records gain little from compression, and compressing them
		// here and decompressing them in the broker cost more CPU than the
		// rest of the produce path.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		// A resumed partition (after its restore) joins the next fetch
		// request; a shorter long-poll makes that come sooner.
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if o.OnAssigned != nil {
		opts = append(opts, kgo.OnPartitionsAssigned(o.OnAssigned))
	}
	if o.OnRevoked != nil {
		opts = append(opts, kgo.OnPartitionsRevoked(o.OnRevoked))
	}
	if o.OnLost != nil {
		opts = append(opts, kgo.OnPartitionsLost(o.OnLost))
	}
	if !transactional {
		cl, err := kgo.NewClient(opts...)
		return Session{Client: cl}, err
	}
	opts = append(opts,
		kgo.TransactionalID(o.TransactionalID),
		kgo.TransactionTimeout(o.TransactionTimeout),
		kgo.RequireStableFetchOffsets(),
		classicTransactions(),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return Session{}, err
	}
	return Session{Client: sess.Client(), Txn: sess}, nil
}

// linger is how long the producer holds a partition's output records
// before it sends them, to batch them (franz-go's ProducerLinger, the Java
// producer's linger.ms; Kafka Streams sets 100 ms). Transactional: the
// transaction timeout, longer than any transaction lives, but at most
// maxLinger, the longest franz-go takes (a transaction is ended long
// before it, as a batch lasts about the commit interval): the records go
// out when the transaction ends (End sends whatever is held), or earlier
// when a partition's batch is full or the client holds as many records as
// it may. No read_committed consumer sees them before the commit, so
// holding them delays only the commit, by the time it takes to send them,
// and the broker takes a batch's records to one partition in a few large
// record batches, not a stream of small ones, for less CPU per record. A
// linger of the commit interval would run out just before a batch that
// lasts the whole interval ends. Without transactions, none: the records
// are visible as soon as they are written, and a batch's commit waits for
// them.
func linger(transactional bool, transactionTimeout time.Duration) time.Duration {
	if transactional {
		return min(transactionTimeout, maxLinger)
	}
	return 0
}

// maxLinger is the longest linger franz-go allows (its ProducerLinger
// refuses more).
const maxLinger = time.Minute

// classicTransactions keeps a transactional client on Kafka's classic
// transaction protocol (transaction.version 1) when the cluster also offers
// KIP-890 part 2 (transaction.version 2, the default of new Kafka 4.x
// clusters): it caps EndTxn at version 4, below which franz-go does not opt
// in. With franz-go v1.22.3 against Kafka 4.1.1 under load, the version 2
// path now and then had the broker refuse a produce with
// OUT_OF_ORDER_SEQUENCE_NUMBER ("expected sequence 0 for transactions v2
// idempotent producer with no existing state"), in orderflow and in the bare
// ceiling program alike; the transaction then aborted and the session
// stalled for about 10 s. With the classic protocol no run showed it.
// Exactly-once holds either way; revisit with a newer franz-go.
func classicTransactions() kgo.Opt {
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	return kgo.MaxVersions(v)
}

// CommitOffsets commits offsets of topic's partitions for cl's group,
// synchronously, and returns the request's error or the first partition's:
// the commit of a batch without transactions.
func CommitOffsets(ctx context.Context, cl *kgo.Client, topic string, offsets map[int32]kgo.EpochOffset) error {
	var cerr error
	cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			cerr = err
			if resp == nil {
				return
			}
			for _, t := range resp.Topics {
				for _, pr := range t.Partitions {
					if cerr == nil {
						cerr = kerr.ErrorForCode(pr.ErrorCode)
					}
				}
			}
		})
	return cerr
}

// partitioner sends changelog records to the partition set on the record
// and every other record by key.
type partitioner struct {
	changelog string
	manual    kgo.Partitioner
	byKey     kgo.Partitioner
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.changelog {
		return p.manual.ForTopic(topic)
	}
	return p.byKey.ForTopic(topic)
}
