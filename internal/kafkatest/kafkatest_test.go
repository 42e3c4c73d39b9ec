package kafkatest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestSmoke proves the harness on both kinds of cluster: a compacted topic
// created with kadm has the config asked for, and read_committed returns
// exactly the records of the committed transaction, none of the aborted one.
func TestSmoke(t *testing.T) {
	Both(t, func(t *testing.T, c *Cluster) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		compacted := Name(t, "smoke-compacted")
		c.CreateTopic(t, compacted, 3, CompactConfigs())
		cfgs, err := c.Admin(t).DescribeTopicConfigs(ctx, compacted)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := cfgs.On(compacted, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe %s: %v %v", compacted, err, rc.Err)
		}
		var policy string
		for _, cfg := range rc.Configs {
			if cfg.Key == "cleanup.policy" && cfg.Value != nil {
				policy = *cfg.Value
			}
		}
		if policy != "compact" {
			t.Fatalf("cleanup.policy of %s = %q, want compact", compacted, policy)
		}

		topic := Name(t, "smoke-txn")
		c.CreateTopic(t, topic, 3, nil)
		cl := c.Client(t,
			kgo.TransactionalID(Name(t, "txn")),
			kgo.DefaultProduceTopic(topic),
		)
		produce := func(prefix string, n int, commit kgo.TransactionEndTry) {
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				r := &kgo.Record{Key: []byte(strconv.Itoa(i % 17)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := cl.EndTransaction(ctx, commit); err != nil {
				t.Fatal(err)
			}
		}
		produce("committed", 1000, kgo.TryCommit)
		produce("aborted", 300, kgo.TryAbort)

		recs := c.ReadCommitted(t, topic)
		if len(recs) != 1000 {
			t.Fatalf("read %d committed records, want 1000", len(recs))
		}
		seen := map[string]bool{}
		for _, r := range recs {
			v := string(r.Value)
			if seen[v] {
				t.Fatalf("record %q read twice", v)
			}
			seen[v] = true
		}
		for i := 0; i < 1000; i++ {
			if v := fmt.Sprintf("committed-%d", i); !seen[v] {
				t.Fatalf("committed record %q missing", v)
			}
		}
	})
}

// TestFailoverThreeNodes SIGKILLs one node of a three-node cluster while a
// producer with acks=all writes to a topic with replication factor 3 and
// min.insync.replicas 2: every produce still succeeds, and every acknowledged
// record is there afterwards.
func TestFailoverThreeNodes(t *testing.T) {
	lc := StartLocal(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	topic := Name(t, "failover")
	s := func(v string) *string { return &v }
	lc.CreateTopic(t, topic, 6, map[string]*string{"min.insync.replicas": s("2")})
	td, err := lc.Admin(t).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range td[topic].Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("partition %d has replicas %v, want 3", p.Partition, p.Replicas)
		}
	}

	cl := lc.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	const total = 6000
	var (
		mu     sync.Mutex
		acked  = make(map[string]bool, total)
		failed []error
	)
	// Warm up: the producer ID and the partition leaders are known before
	// the stream starts (a just-started cluster can refuse the first requests).
	const warm = 60
	for i := 0; i < warm; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprintf("warm-%d", i)), Value: []byte(fmt.Sprintf("warm-%d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("warm-up produce: %v", err)
		}
	}
	victim := int(td[topic].Partitions[0].Leader)
	killed := make(chan struct{})
	for i := 0; i < total; i++ {
		if i == total/3 {
			// Kill the leader of partition 0 mid-stream, with records in
			// flight to it.
			t.Logf("SIGKILL node %d (leader of partition 0) after %d records", victim, i)
			lc.Kill(t, victim)
			close(killed)
		}
		v := fmt.Sprintf("rec-%05d", i)
		cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(v)}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, fmt.Errorf("%s: %w", r.Value, err))
				return
			}
			acked[string(r.Value)] = true
		})
		if i%100 == 0 {
			time.Sleep(2 * time.Millisecond) // a stream, not one burst
		}
	}
	<-killed
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(failed) > 0 || len(acked) != total {
		t.Fatalf("%d produces failed (first: %v), %d of %d acknowledged", len(failed), failed[:min(3, len(failed))], len(acked), total)
	}
	recs := lc.ReadCommitted(t, topic)
	got := map[string]int{}
	for _, r := range recs {
		got[string(r.Value)]++
	}
	for v := range acked {
		if got[v] == 0 {
			t.Fatalf("acknowledged record %s lost after the node was killed", v)
		}
	}
	if len(recs) != total+warm {
		t.Errorf("read %d records, want %d (idempotent producer: no duplicates)", len(recs), total+warm)
	}
}
