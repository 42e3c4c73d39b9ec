package processor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/processor"
)

// TestEnsureTopicsCreatesMissing creates every topic, the changelog
// compacted and co-partitioned with the input.
func TestEnsureTopicsCreatesMissing(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 5) // newEnv runs EnsureTopics
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		td, err := c.Admin(t).ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range []string{e.cfg.Topics.Events, e.cfg.Topics.Status, e.cfg.Topics.Rejections, e.cfg.Topics.DLQ, processor.ChangelogTopic(e.cfg.AppID)} {
			if n := len(td[tp].Partitions); n != 5 {
				t.Errorf("topic %s has %d partitions, want 5", tp, n)
			}
		}
		if err := processor.CheckTopics(ctx, c.Admin(t), e.cfg); err != nil {
			t.Fatalf("layout EnsureTopics made does not pass CheckTopics: %v", err)
		}
	})
}

// TestEnsureTopicsRefusesBadLayout: a changelog with another partition count
// than the input, or not compacted, stops start-up with a message that says
// what to fix.
func TestEnsureTopicsRefusesBadLayout(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		base := processor.DefaultConfig()
		base.Brokers = c.Brokers

		t.Run("partitions", func(t *testing.T) {
			cfg := base
			cfg.AppID = kafkatest.Name(t, "app")
			cfg.Topics = processor.Topics{Events: kafkatest.Name(t, "in"), Status: kafkatest.Name(t, "st"), Rejections: kafkatest.Name(t, "rj"), DLQ: kafkatest.Name(t, "dlq")}
			c.CreateTopic(t, cfg.Topics.Events, 4, nil)
			c.CreateTopic(t, processor.ChangelogTopic(cfg.AppID), 3, kafkatest.CompactConfigs())
			err := processor.EnsureTopics(ctx, c.Admin(t), cfg)
			if !errors.Is(err, processor.ErrTopology) || !strings.Contains(err.Error(), "has 3 partitions but input") {
				t.Fatalf("EnsureTopics = %v, want ErrTopology naming the partition counts", err)
			}
		})
		t.Run("compaction", func(t *testing.T) {
			cfg := base
			cfg.AppID = kafkatest.Name(t, "app")
			cfg.Topics = processor.Topics{Events: kafkatest.Name(t, "in"), Status: kafkatest.Name(t, "st"), Rejections: kafkatest.Name(t, "rj"), DLQ: kafkatest.Name(t, "dlq")}
			c.CreateTopic(t, cfg.Topics.Events, 3, nil)
			c.CreateTopic(t, processor.ChangelogTopic(cfg.AppID), 3, nil)
			err := processor.EnsureTopics(ctx, c.Admin(t), cfg)
			if !errors.Is(err, processor.ErrTopology) || !strings.Contains(err.Error(), "cleanup.policy=delete, it must be compact") {
				t.Fatalf("EnsureTopics = %v, want ErrTopology about cleanup.policy", err)
			}
		})
	})
}
