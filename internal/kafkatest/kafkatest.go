// Package kafkatest gives a test a Kafka cluster: the real broker named by
// KAFKA_BROKERS (set by `make test`), an in-process kfake cluster, or a
// throw-away local cluster of real brokers that the test itself starts, stops
// and kills (for failover tests). It also has the small helpers every Kafka
// test needs: unique names, topic creation with kadm, and reading a topic to
// its end with read_committed.
//
// A test that needs the real broker and has none fails when CI=true and skips
// with a clear message elsewhere.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kread"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a Kafka cluster a test talks to.
type Cluster struct {
	// Brokers are the seed addresses.
	Brokers []string
	// Real is true for a real Apache Kafka broker, false for kfake.
	Real bool
	// Fake is the in-process cluster when Real is false.
	Fake *kfake.Cluster
}

// requireReal fails the test in CI and skips it elsewhere, saying why.
func requireReal(t testing.TB, why string) {
	t.Helper()
	msg := "needs a real Kafka broker: " + why + "; run `make test` (it starts one) or set KAFKA_BROKERS"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Real returns the real broker named by KAFKA_BROKERS (comma-separated).
// Without it the test fails in CI and is skipped elsewhere. In -short mode
// tests needing the real broker are skipped.
func Real(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Kafka broker; skipped in -short mode")
	}
	v := strings.TrimSpace(os.Getenv("KAFKA_BROKERS"))
	if v == "" {
		requireReal(t, "KAFKA_BROKERS is not set")
	}
	return &Cluster{Brokers: strings.Split(v, ","), Real: true}
}

// Fake starts an in-process kfake cluster for the test and shuts it down when
// the test ends. Quick compaction is on (the cleaner runs every 200 ms).
func Fake(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	base := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "200"}),
	}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Cluster{Brokers: c.ListenAddrs(), Fake: c}
}

// Both runs fn as two subtests, "kfake" and "kafka" (the real broker), so
// one test body proves a behaviour on both.
func Both(t *testing.T, fn func(t *testing.T, c *Cluster)) {
	t.Run("kfake", func(t *testing.T) { fn(t, Fake(t)) })
	t.Run("kafka", func(t *testing.T) { fn(t, Real(t)) })
}

// Client returns a client seeded with the cluster's brokers, closed when the
// test ends.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client for the cluster, closed when the test ends.
// Its metadata cache lives 100 ms (kadm answers ListTopics from the client's
// cache, 5 s by default), so topics a test creates show up at once.
func (c *Cluster) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(c.Client(t, kgo.MetadataMinAge(100*time.Millisecond)))
}

// CompactConfigs are topic configs for a compacted topic whose cleaner runs
// within seconds, for tests (the active segment is never cleaned; a segment
// rolls on the first append after segment.ms).
func CompactConfigs() map[string]*string {
	s := func(v string) *string { return &v }
	return map[string]*string{
		"cleanup.policy":            s("compact"),
		"segment.ms":                s("1000"),
		"min.cleanable.dirty.ratio": s("0.01"),
		"min.compaction.lag.ms":     s("0"),
		"delete.retention.ms":       s("1000"),
	}
}

// CreateTopic creates a topic with the given partitions and configs, and a
// replication factor of min(3, brokers). It fails the test on any error,
// including "already exists" (test topic names are unique).
func (c *Cluster) CreateTopic(t testing.TB, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rf := int16(1)
	if md, err := adm.BrokerMetadata(ctx); err == nil && len(md.Brokers) >= 3 {
		rf = 3
	}
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := WaitTopic(ctx, adm, topic, partitions); err != nil {
		t.Fatal(err)
	}
}

// WaitTopic waits until the metadata shows every partition of a new topic
// with a leader: CreateTopics returns before all brokers know the topic, and
// a request in that window gets UNKNOWN_TOPIC_OR_PARTITION.
func WaitTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	for {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil {
			d := td[topic]
			ready := d.Err == nil && int32(len(d.Partitions)) == partitions
			for _, p := range d.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if ready {
				// Describe configs answers from the controller's view,
				// produce from the leader's: both know it now.
				if rcs, err := adm.DescribeTopicConfigs(ctx, topic); err == nil {
					if rc, err := rcs.On(topic, nil); err == nil && rc.Err == nil {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a name unique to this test and run, for topics, group ids and
// transactional ids: "<base>.<TestName>.<random>". Tests share one broker and
// run in parallel, so nothing may be named twice.
func Name(t testing.TB, base string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := unsafeName.ReplaceAllString(t.Name(), "_")
	if len(n) > 120 {
		n = n[len(n)-120:]
	}
	return fmt.Sprintf("%s.%s.%s", base, n, hex.EncodeToString(b[:]))
}

// ReadCommitted reads topic from the beginning to the end offsets it sees at
// the call, with read_committed isolation, and returns the records in
// partition order (offset order within a partition). Transaction markers and
// aborted records occupy offsets, so the end is detected by the consumer's
// position reaching the end offset, not by a record's offset.
func (c *Cluster) ReadCommitted(t testing.TB, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs, err := ReadToEnd(ctx, c.Brokers, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return recs
}

// ReadToEnd is ReadCommitted for code without a testing.TB (kread does the
// reading: to the last stable offset, the end found by position).
func ReadToEnd(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) ([]*kgo.Record, error) {
	byPart := map[int32][]*kgo.Record{}
	err := kread.ReadCommitted(ctx, brokers, opts, topic, func(r *kgo.Record) error {
		byPart[r.Partition] = append(byPart[r.Partition], r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	parts := slices.Sorted(maps.Keys(byPart))
	var out []*kgo.Record
	for _, p := range parts {
		out = append(out, byPart[p]...)
	}
	return out, nil
}

// PartitionOf returns the partition that Kafka's default partitioner (the
// Java client's murmur2 of the key, franz-go's default too) gives a record
// keyed key in a topic of n partitions: where an order's events, and so its
// state, live.
func PartitionOf(key string, n int) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: []byte(key)}, n))
}
