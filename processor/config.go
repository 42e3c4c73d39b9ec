package processor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Guarantee is a processing guarantee.
type Guarantee string

const (
	// ExactlyOnce (the default) commits outputs, changelog records and input
	// offsets in one Kafka transaction per batch.
	ExactlyOnce Guarantee = "exactly_once"
	// AtLeastOnce produces without transactions and commits input offsets
	// after outputs and changelog records are acknowledged: nothing is lost,
	// an input event may be processed twice after a crash.
	AtLeastOnce Guarantee = "at_least_once"
)

// Default topic names.
const (
	DefaultEventsTopic     = "orders.events"
	DefaultStatusTopic     = "orders.status"
	DefaultRejectionsTopic = "orders.rejections"
	DefaultDLQTopic        = "orders.dlq"
	DefaultAppID           = "orderflow"
)

// Topics names the topics a processor reads and writes. The changelog is
// not here: it is always "<AppID>-state-changelog".
type Topics struct {
	Events     string // input; default orders.events
	Status     string // accepted transitions; default orders.status
	Rejections string // refused events; default orders.rejections
	DLQ        string // undecodable input; default orders.dlq
}

// Config configures a Processor. Start from DefaultConfig: its zero value
// is not usable. New validates it and never modifies the caller's copy.
type Config struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// AppID names the application: it is the consumer group id and the
	// changelog topic's prefix. Default "orderflow".
	AppID string
	// InstanceID names this instance; the transactional ids are
	// "<AppID>-<InstanceID>" and "<AppID>-<InstanceID>/<thread>", so it
	// must be stable across restarts of one instance and unique among
	// running instances. Default: the host name.
	InstanceID string
	// Topics are the topic names. Defaults: see Topics.
	Topics Topics
	// Guarantee is the processing guarantee. Default ExactlyOnce.
	Guarantee Guarantee
	// CommitInterval bounds a batch: one transaction (or offset commit) per
	// poll batch, at most this long. Default 100 ms.
	CommitInterval time.Duration
	// EndIdleBatches ends a batch as soon as the client holds no more
	// fetched input and the fetch it started last brings none within a
	// few milliseconds, instead of polling for more until CommitInterval
	// has passed; CommitInterval still bounds a batch under steady load. It
	// trades more, smaller transactions (more broker work per record) for
	// latency: a record no longer waits for the rest of the interval when
	// no input follows it. Default false.
	EndIdleBatches bool
	// MaxBatchRecords bounds the input records of one batch. Default 10,000.
	MaxBatchRecords int
	// Threads is how many consumer-group members (each with its own client
	// and transactional id, "<AppID>-<InstanceID>" for the first and
	// "<AppID>-<InstanceID>/<i>" for the others) this instance runs over
	// its one store, like Kafka Streams' num.stream.threads. While one
	// thread ends a transaction, another applies records. Default 1.
	Threads int
	// StateDir is the directory of the instance's Pebble store. Required.
	StateDir string
	// Machine is the order state machine. Default topology.Default().
	Machine *topology.Machine
	// Partitions is the partition count of topics the processor creates
	// when they are missing. Default 12.
	Partitions int32
	// ReplicationFactor of created topics; 0 means min(3, brokers).
	// Default 0.
	ReplicationFactor int16
	// Retention is how long a closed order is kept after it closed,
	// measured on the processor's clock. 0 disables retention, also in a
	// Config not made by DefaultConfig, which sets 7 days.
	Retention time.Duration
	// SweepInterval is how often the retention sweep runs. Default 1 minute.
	SweepInterval time.Duration
	// SweepLimit is the most orders of one partition a sweep deletes, to
	// bound the batch it runs in. A sweep that reaches it runs again in the
	// thread's next batch, not a SweepInterval later, until the expired
	// orders are gone. Default 1000.
	SweepLimit int
	// SchemaRegistryURL switches the output topics (status, rejections) and
	// the input decoding to the Confluent wire format with this registry.
	// Default "": Avro single-object encoding. The changelog always uses
	// single-object encoding (it is orderflow's own).
	SchemaRegistryURL string
	// SchemaRegistry says how to reach and use the registry of
	// SchemaRegistryURL: credentials, TLS, lookup-only, timeout. Setting
	// any of it but the timeout without SchemaRegistryURL is an error.
	SchemaRegistry SchemaRegistry
	// WriterSchemas are Avro schema texts of further versions of the
	// input's OrderEvent (or another orderflow record) that producers may
	// write with, beyond those orderflow embeds: single-object payloads
	// name their writer schema by fingerprint only, so an event written
	// with a version the processor does not know is dead-lettered. Each is
	// resolved to the reader schema at start (avro.CheckWriterSchema); one
	// that cannot be is a configuration error. Default none.
	WriterSchemas []string
	// KafkaOpts are extra franz-go options for every client this processor
	// makes (TLS, SASL, dialer). Connection options only.
	KafkaOpts []kgo.Opt
	// SessionTimeout is the consumer group session timeout. Default 10 s.
	SessionTimeout time.Duration
	// RestoreConcurrency bounds how many partitions restore from the
	// changelog at once; each holds a fetch and a batch of states in
	// memory, and two already keep a core busy. Default 2.
	RestoreConcurrency int
	// StandbyReplicas is how many standby copies of each partition the
	// group keeps on other instances (Kafka Streams'
	// num.standby.replicas): each is kept current by following the
	// changelog (read_committed) into that instance's store, so that when
	// the owner leaves or dies the partition goes to the instance with the
	// most caught-up copy, which restores only the tail; and it answers
	// order queries, marked stale, while the owner cannot. Never on the
	// instance that owns the partition; fewer when there are not enough
	// instances. All instances of an application should use the same value:
	// a group with a member without standbys assigns none. Default 0.
	StandbyReplicas int
	// AcceptableRecoveryLag is how far (in changelog offsets) an
	// instance's copy of a partition may be behind its owner's for the
	// group to move the partition there (Kafka Streams'
	// acceptable.recovery.lag). With StandbyReplicas, a move to an
	// instance whose copy is further behind (a new instance, say) waits:
	// that instance follows the partition as a warm-up standby first, and
	// rejoins the group once its copy is this close. Default 10,000.
	AcceptableRecoveryLag int64
	// TransactionTimeout is the Kafka transaction timeout: how long a crashed
	// instance's open transaction blocks its partitions. Default 10 s.
	TransactionTimeout time.Duration
	// ReseedChangelog makes Run, on a store whose changelog topic was
	// deleted (or deleted and created again), write every state the store
	// holds to the changelog (creating it if missing) and record it, then
	// return nil without processing, instead of refusing with
	// ErrChangelogLost. With several instances, reseed every one whose
	// store holds state before starting any (a partition several stores
	// hold goes from the store that held it last). Run again after a
	// failure: a reseed killed halfway is finished by the next.
	ReseedChangelog bool
	// Partitioner is the partitioner the input's producers use, for order
	// queries (Processor.Partitions) and the layout check. Default None:
	// the one the input's records show (murmur2 until they show another).
	// Records it did not place are counted
	// (orderflow_partitioner_mismatches_total) and a contradiction is
	// logged; queries still find every order.
	Partitioner partitioner.Name
	// Logger receives the processor's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the processor's clock (retention, processed_at). Default
	// time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default set, but no Brokers or
// StateDir. Machine, Logger and Now stay nil: New resolves them when it runs
// (the built-in machine, slog.Default() at that time, time.Now).
func DefaultConfig() Config {
	c := Config{Retention: defaultRetention}.withDefaults()
	c.Machine, c.Logger, c.Now = nil, nil, nil
	return c
}

// defaultRetention is DefaultConfig's Retention. Unlike the other defaults
// it is not what a zero Retention means: 0 disables retention.
const defaultRetention = 7 * 24 * time.Hour

// MinSessionTimeout is the shortest Config.SessionTimeout: the Kafka
// client's floor. Brokers require more by default: 6 s
// (group.min.session.timeout.ms).
const MinSessionTimeout = 100 * time.Millisecond

// DefaultAcceptableRecoveryLag is the default Config.AcceptableRecoveryLag
// (Kafka Streams' default acceptable.recovery.lag).
const DefaultAcceptableRecoveryLag = 10000

// ChangelogTopic is the changelog topic of an application.
func ChangelogTopic(appID string) string { return appID + "-state-changelog" }

// ErrConfig is matched by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// withDefaults returns c with every zero field that has a default set to
// it: the one place the defaults are defined.
func (c Config) withDefaults() Config {
	setDefault(&c.AppID, DefaultAppID)
	if c.InstanceID == "" {
		c.InstanceID, _ = os.Hostname()
	}
	setDefault(&c.Topics.Events, DefaultEventsTopic)
	setDefault(&c.Topics.Status, DefaultStatusTopic)
	setDefault(&c.Topics.Rejections, DefaultRejectionsTopic)
	setDefault(&c.Topics.DLQ, DefaultDLQTopic)
	setDefault(&c.Guarantee, ExactlyOnce)
	setDefault(&c.CommitInterval, 100*time.Millisecond)
	setDefault(&c.MaxBatchRecords, 10000)
	setDefault(&c.Threads, 1)
	setDefault(&c.Partitions, 12)
	setDefault(&c.SweepInterval, time.Minute)
	setDefault(&c.SweepLimit, 1000)
	setDefault(&c.SessionTimeout, 10*time.Second)
	setDefault(&c.TransactionTimeout, 10*time.Second)
	setDefault(&c.RestoreConcurrency, 2)
	setDefault(&c.AcceptableRecoveryLag, DefaultAcceptableRecoveryLag)
	if c.Machine == nil {
		c.Machine = topology.Default()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.KafkaOpts = append([]kgo.Opt(nil), c.KafkaOpts...)
	c.Brokers = append([]string(nil), c.Brokers...)
	return c
}

// setDefault sets *v to def if it is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (c Config) validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(c.Brokers) == 0 {
		add("Config.Brokers is empty: no brokers (HOST:PORT[,HOST:PORT])")
	}
	if c.StateDir == "" {
		add("Config.StateDir is empty: no state dir")
	}
	switch c.Guarantee {
	case ExactlyOnce, AtLeastOnce:
	default:
		add("Config.Guarantee %q: use %s or %s", c.Guarantee, ExactlyOnce, AtLeastOnce)
	}
	if c.CommitInterval < 0 {
		add("Config.CommitInterval %v is negative", c.CommitInterval)
	}
	if c.MaxBatchRecords < 0 {
		add("Config.MaxBatchRecords %d is negative", c.MaxBatchRecords)
	}
	if c.SweepInterval < 0 {
		add("Config.SweepInterval %v is negative", c.SweepInterval)
	}
	if c.SessionTimeout < MinSessionTimeout {
		add("Config.SessionTimeout %v: must be at least %v", c.SessionTimeout, MinSessionTimeout)
	}
	if c.TransactionTimeout <= c.CommitInterval {
		add("Config.TransactionTimeout %v: must be longer than Config.CommitInterval %v (a batch's transaction lasts about that long)", c.TransactionTimeout, c.CommitInterval)
	}
	if c.Retention < 0 {
		add("Config.Retention %v is negative (0 disables retention)", c.Retention)
	}
	if c.SweepLimit < 0 {
		add("Config.SweepLimit %d is negative", c.SweepLimit)
	}
	if c.RestoreConcurrency < 0 {
		add("Config.RestoreConcurrency %d is negative", c.RestoreConcurrency)
	}
	if c.StandbyReplicas < 0 {
		add("Config.StandbyReplicas %d is negative", c.StandbyReplicas)
	}
	if c.AcceptableRecoveryLag < 0 {
		add("Config.AcceptableRecoveryLag %d is negative", c.AcceptableRecoveryLag)
	}
	if c.Threads < 1 {
		add("Config.Threads %d: must be at least 1", c.Threads)
	}
	if c.Partitions < 1 {
		add("Config.Partitions %d: must be at least 1", c.Partitions)
	}
	if c.ReplicationFactor < 0 {
		add("Config.ReplicationFactor %d is negative", c.ReplicationFactor)
	}
	if strings.ContainsAny(c.AppID, " /\\") || strings.ContainsAny(c.InstanceID, " /\\") {
		add("Config.AppID %q and Config.InstanceID %q must not contain spaces or slashes", c.AppID, c.InstanceID)
	}
	if c.SchemaRegistryURL != "" {
		if _, err := c.SchemaRegistry.registryURLs(c.SchemaRegistryURL); err != nil {
			add("%v", err)
		}
	} else if c.SchemaRegistry.set() {
		add("schema registry settings (credentials, TLS files, lookup-only) are set but Config.SchemaRegistryURL is empty")
	}
	names := map[string]string{}
	for _, t := range []struct{ what, name string }{
		{"Config.Topics.Events", c.Topics.Events}, {"Config.Topics.Status", c.Topics.Status},
		{"Config.Topics.Rejections", c.Topics.Rejections}, {"Config.Topics.DLQ", c.Topics.DLQ},
		{"the changelog of Config.AppID", ChangelogTopic(c.AppID)},
	} {
		if prev, ok := names[t.name]; ok {
			add("%s and %s are both named %q", prev, t.what, t.name)
		}
		names[t.name] = t.what
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	return nil
}
