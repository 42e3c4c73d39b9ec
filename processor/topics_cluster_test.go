package processor_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestThreeNodeTopics runs the topic checks that need a cluster of three
// brokers, on one local cluster (starting one is slow): fresh applications
// start without racing the brokers' metadata, created topics get
// min.insync.replicas=2, and an instance that loses two of three brokers
// does not flood its log.
func TestThreeNodeTopics(t *testing.T) {
	lc := kafkatest.StartLocal(t, 3)
	c := &lc.Cluster

	// Each fresh application creates its five topics and describes the
	// changelog at once: a broker that has not yet applied the new topic's
	// metadata answers the describe with UNKNOWN_TOPIC_OR_PARTITION.
	t.Run("FreshAppsStart", func(t *testing.T) {
		for i := range 6 {
			cfg := testConfig(t, c, 6)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := processor.EnsureTopics(ctx, c.Admin(t), cfg)
			cancel()
			if err != nil {
				t.Errorf("start %d of a fresh app: EnsureTopics = %v", i+1, err)
			}
		}
	})

	t.Run("MinInsyncReplicas", func(t *testing.T) {
		cfg := testConfig(t, c, 6)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		adm := c.Admin(t)
		if err := processor.EnsureTopics(ctx, adm, cfg); err != nil {
			t.Fatal(err)
		}
		topics := []string{cfg.Topics.Events, cfg.Topics.Status, cfg.Topics.Rejections, cfg.Topics.DLQ, processor.ChangelogTopic(cfg.AppID)}
		rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range topics {
			rc, err := rcs.On(tp, nil)
			if err == nil {
				err = rc.Err
			}
			if err != nil {
				t.Fatalf("describing %s: %v", tp, err)
			}
			got := "(unset)"
			for _, kv := range rc.Configs {
				if kv.Key == "min.insync.replicas" && kv.Value != nil {
					got = *kv.Value
				}
			}
			if got != "2" {
				t.Errorf("topic %s (replication factor 3): min.insync.replicas = %s, want 2", tp, got)
			}
		}
	})

	// Two of three brokers gone: the client's errors repeat for as long as
	// they are away, and must not fill the disk with the same lines.
	t.Run("TwoBrokersDownLogVolume", func(t *testing.T) {
		e := newEnv(t, c, 6)
		var lines atomic.Int64
		msgs := &messageCounts{m: map[string]int{}}
		cfg := e.instance(t, "a", t.TempDir())
		cfg.Logger = slog.New(countingHandler{n: &lines, msgs: msgs, next: slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})})
		items := workload.Generate(workload.Options{Seed: 7, Orders: 500})
		e.produce(t, items)
		_, stop := run(t, cfg)
		e.waitOutputs(t, len(items), 2*time.Minute)

		before := lines.Load()
		lc.Kill(t, 2)
		lc.Kill(t, 3)
		// Traffic goes on meanwhile: the partitions broker 1 leads take it.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cl := c.Client(t, kgo.DefaultProduceTopic(cfg.Topics.Events))
		for _, it := range workload.Generate(workload.Options{Seed: 8, Orders: 2000}) {
			if it.Malformed != nil {
				continue
			}
			val, err := e.codec.EncodeEvent(nil, &it.Event)
			if err != nil {
				t.Fatal(err)
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(it.Key), Value: val}, nil)
		}
		<-ctx.Done()
		during := lines.Load() - before
		_ = stop() // the brokers stay down: the cluster is stopped when the test ends
		t.Logf("log lines while two of three brokers were down for 15 s: %d; lines by message over the whole test: %v", during, msgs.snapshot())
		if during >= 500 {
			t.Errorf("%d log lines in 15 s with two of three brokers down, want < 500: repeated client errors must be rate-limited", during)
		}
	})
}

// countingHandler counts the records that pass its next handler's level,
// in all and by message.
type countingHandler struct {
	n    *atomic.Int64
	msgs *messageCounts
	next slog.Handler
}

type messageCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *messageCounts) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

func (h countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	h.msgs.mu.Lock()
	h.msgs.m[r.Message]++
	h.msgs.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{n: h.n, msgs: h.msgs, next: h.next.WithAttrs(as)}
}

func (h countingHandler) WithGroup(g string) slog.Handler {
	return countingHandler{n: h.n, msgs: h.msgs, next: h.next.WithGroup(g)}
}
