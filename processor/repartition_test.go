package processor_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitionCount returns the partition count of topic (0 if it is missing).
func partitionCount(t *testing.T, c *kafkatest.Cluster, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	td, err := c.Admin(t).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return 0
	}
	return len(d.Partitions)
}

// currentChangelog is processor.CurrentChangelog of e's application.
func (e *env) currentChangelog(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := processor.CurrentChangelog(ctx, e.c.Admin(t), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestRepartitionContinuesOrders processes the first half of a workload on
// 6 partitions, repartitions to 12, and processes the second half (produced
// by the new count) with the same state directory: every event's outcome
// and every order's final state equal replay of the whole workload, so the
// orders whose events are on both sides of the switch continued where they
// were, many of them in another partition.
func TestRepartitionContinuesOrders(t *testing.T) {
	realOnly(t, func(t *testing.T, c *kafkatest.Cluster) {
		t.Parallel()
		e := newEnv(t, c, 6)
		items := workload.Generate(workload.Options{Seed: 30, Orders: 300})
		half := len(items) / 2
		moved := map[string]bool{} // orders on both sides whose partition changes
		before := map[string]bool{}
		for i, it := range items {
			if i < half {
				before[it.Key] = true
			} else if before[it.Key] && kafkatest.PartitionOf(it.Key, 6) != kafkatest.PartitionOf(it.Key, 12) {
				moved[it.Key] = true
			}
		}
		if len(moved) < 10 {
			t.Fatalf("only %d orders have events on both sides and change partition: the test would prove little", len(moved))
		}
		dir := t.TempDir()
		e.produce(t, items[:half])
		_, stop := run(t, e.instance(t, "a", dir))
		e.waitOutputs(t, half, 2*time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var lines []string
		res, err := processor.Repartition(ctx, e.cfg, processor.RepartitionOptions{
			Partitions: 12,
			Progress:   func(l string) { lines = append(lines, l) },
		})
		if err != nil {
			t.Fatalf("repartition: %v\n%s", err, strings.Join(lines, "\n"))
		}
		old, next := processor.ChangelogTopic(e.cfg.AppID), processor.RepartitionedChangelogTopic(e.cfg.AppID, 12)
		if res.From != 6 || res.To != 12 || res.OldChangelog != old || res.NewChangelog != next || res.Orders == 0 {
			t.Fatalf("result %+v", res)
		}
		if n := partitionCount(t, c, e.cfg.Topics.Events); n != 12 {
			t.Fatalf("input has %d partitions after repartition, want 12", n)
		}
		if got := e.currentChangelog(t); got != next {
			t.Fatalf("current changelog %s, want %s", got, next)
		}
		if n := partitionCount(t, c, old); n != 0 {
			t.Fatalf("old changelog %s still exists", old)
		}
		if !strings.Contains(strings.Join(lines, "\n"), "paused") {
			t.Errorf("the output does not say that producers must be paused:\n%s", strings.Join(lines, "\n"))
		}

		e.produce(t, items[half:])
		_, stop = run(t, e.instance(t, "a", dir))
		o := e.waitOutputs(t, len(items), 2*time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		checkExactlyOnce(t, items, o)
		e.checkChangelogTopic(t, items, next)
	})
}

// TestRepartitionRefuses checks each refusal: members in the group, a
// count not larger than today's, unprocessed input, and input written while
// it ran; none changes the layout in use.
func TestRepartitionRefuses(t *testing.T) {
	realOnly(t, func(t *testing.T, c *kafkatest.Cluster) {
		t.Parallel()
		e := newEnv(t, c, 6)
		items := workload.Generate(workload.Options{Seed: 31, Orders: 20})
		e.produce(t, items)
		dir := t.TempDir()
		_, stop := run(t, e.instance(t, "a", dir))
		e.waitOutputs(t, len(items), 2*time.Minute)

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		repartition := func(n int, checkpoint func(string)) error {
			_, err := processor.Repartition(ctx, e.cfg, processor.RepartitionOptions{Partitions: n, Checkpoint: checkpoint})
			return err
		}
		unchanged := func() {
			t.Helper()
			if n := partitionCount(t, c, e.cfg.Topics.Events); n != 6 {
				t.Fatalf("input has %d partitions after a refusal, want 6", n)
			}
			if got, want := e.currentChangelog(t), processor.ChangelogTopic(e.cfg.AppID); got != want {
				t.Fatalf("current changelog %s after a refusal, want %s", got, want)
			}
		}
		if err := repartition(12, nil); !errors.Is(err, processor.ErrRefused) || !strings.Contains(err.Error(), "has 1 members") {
			t.Fatalf("with an instance running: %v, want a refusal naming the members", err)
		}
		unchanged()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{6, 4} {
			if err := repartition(n, nil); !errors.Is(err, processor.ErrConfig) || !strings.Contains(err.Error(), "must be larger") {
				t.Fatalf("--partitions %d: %v, want a configuration error", n, err)
			}
		}
		more := workload.Generate(workload.Options{Seed: 32, Orders: 5})
		e.produce(t, more)
		if err := repartition(12, nil); !errors.Is(err, processor.ErrRefused) || !strings.Contains(err.Error(), "has not processed") {
			t.Fatalf("with unprocessed input: %v, want a refusal about the lag", err)
		}
		unchanged()

		_, stop = run(t, e.instance(t, "a", dir))
		e.waitOutputs(t, len(items)+len(more), 2*time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		// A producer that writes while it runs.
		write := func(stage string) {
			if stage != "verified" {
				return
			}
			cl := e.c.Client(t, kgo.DefaultProduceTopic(e.cfg.Topics.Events))
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("late"), Value: []byte("x")}).FirstErr(); err != nil {
				t.Error(err)
			}
		}
		if err := repartition(12, write); !errors.Is(err, processor.ErrRefused) || !strings.Contains(err.Error(), "were written to") {
			t.Fatalf("with a record produced meanwhile: %v, want a refusal to finish", err)
		}
		unchanged()
	})
}

// TestRepartitionByTheProducersPartitioner writes states where librdkafka's
// CRC32 partitioner puts their orders: repartition by murmur2 (the default)
// refuses and names crc32; by CRC32 it moves each state to the partition
// CRC32 gives under the new count.
func TestRepartitionByTheProducersPartitioner(t *testing.T) {
	realOnly(t, func(t *testing.T, c *kafkatest.Cluster) {
		t.Parallel()
		e := newEnv(t, c, 6)
		old := processor.ChangelogTopic(e.cfg.AppID)
		cl := e.c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var recs []*kgo.Record
		for i := range 200 {
			key := []byte("order-" + strconv.Itoa(i))
			recs = append(recs, &kgo.Record{Topic: old, Partition: partitioner.CRC32.Partition(key, 6), Key: key, Value: []byte("state " + strconv.Itoa(i))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		_, err := processor.Repartition(ctx, e.cfg, processor.RepartitionOptions{Partitions: 12})
		if !errors.Is(err, processor.ErrRefused) || !strings.Contains(err.Error(), "RepartitionOptions.Partitioner crc32") {
			t.Fatalf("murmur2 over states placed by CRC32: %v, want a refusal that names crc32", err)
		}
		if n := partitionCount(t, c, e.cfg.Topics.Events); n != 6 {
			t.Fatalf("input has %d partitions after a refusal, want 6", n)
		}
		res, err := processor.Repartition(ctx, e.cfg, processor.RepartitionOptions{Partitions: 12, Partitioner: partitioner.CRC32})
		if err != nil {
			t.Fatal(err)
		}
		got := e.c.ReadCommitted(t, res.NewChangelog)
		if len(got) != len(recs) {
			t.Fatalf("%d records in %s, want %d", len(got), res.NewChangelog, len(recs))
		}
		for _, r := range got {
			if want := partitioner.CRC32.Partition(r.Key, 12); r.Partition != want {
				t.Fatalf("order %s in partition %d of %s, CRC32 puts it in %d", r.Key, r.Partition, res.NewChangelog, want)
			}
		}
	})
}
