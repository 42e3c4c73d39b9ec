package processor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrTopology is matched by errors about the topic layout that stop start-up
// (a changelog that is not co-partitioned with the input, or not compacted).
var ErrTopology = errors.New("bad topic layout")

// EnsureTopics creates the topics that are missing and checks the layout:
// the changelog must have as many partitions as the input and be
// cleanup.policy=compact. Missing topics get the input's partition count (or
// cfg.Partitions when the input is missing too) and replication factor
// cfg.ReplicationFactor (0: min(3, brokers)). kadm answers from its client's
// metadata cache: give that client a short kgo.MetadataMinAge, or EnsureTopics
// waits up to the cache's age (5 s by default) to see the topics it created.
func EnsureTopics(ctx context.Context, adm *kadm.Client, cfg Config) error {
	cfg = cfg.withDefaults()
	changelog := ChangelogTopic(cfg.AppID)
	all := []string{cfg.Topics.Events, cfg.Topics.Status, cfg.Topics.Rejections, cfg.Topics.DLQ, changelog}

	brokers, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("reading cluster metadata: %w", err)
	}
	rf := cfg.ReplicationFactor
	if rf == 0 {
		rf = int16(min(3, len(brokers.Brokers)))
	}
	// Listing all topics: asking for missing ones by name makes the client
	// retry UNKNOWN_TOPIC_OR_PARTITION for seconds.
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	partitions := cfg.Partitions
	if in, ok := td[cfg.Topics.Events]; ok && in.Err == nil {
		partitions = int32(len(in.Partitions))
	}
	for _, t := range all {
		if d, ok := td[t]; ok && d.Err == nil {
			continue
		}
		var configs map[string]*string
		if t == changelog {
			compact := "compact"
			configs = map[string]*string{"cleanup.policy": &compact}
		}
		resp, err := adm.CreateTopic(ctx, partitions, rf, configs, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s (%d partitions, replication factor %d): %w", t, partitions, rf, err)
		}
		cfg.Logger.Info("created topic", "topic", t, "partitions", partitions, "replication_factor", rf)
	}
	// A created topic shows in the metadata a moment later.
	for deadline := time.Now().Add(30 * time.Second); ; {
		td, err := adm.ListTopics(ctx, all...)
		ready := err == nil
		for _, t := range all {
			d, ok := td[t]
			ready = ready && ok && d.Err == nil && len(d.Partitions) > 0
			for _, p := range d.Partitions {
				ready = ready && p.Leader >= 0
			}
		}
		if ready || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return CheckTopics(ctx, adm, cfg)
}

// CheckTopics checks the topic layout without changing anything.
func CheckTopics(ctx context.Context, adm *kadm.Client, cfg Config) error {
	cfg = cfg.withDefaults()
	changelog := ChangelogTopic(cfg.AppID)
	td, err := adm.ListTopics(ctx, cfg.Topics.Events, changelog)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	var problems []string
	for _, t := range []string{cfg.Topics.Events, changelog} {
		if d, ok := td[t]; !ok || d.Err != nil {
			problems = append(problems, fmt.Sprintf("topic %s does not exist", t))
		}
	}
	if len(problems) == 0 {
		in, cl := len(td[cfg.Topics.Events].Partitions), len(td[changelog].Partitions)
		if in != cl {
			problems = append(problems, fmt.Sprintf(
				"changelog %s has %d partitions but input %s has %d: they must be equal (partition p of the changelog holds the state of input partition p); "+
					"if partitions were added to the input, stop every instance and move the state to %d partitions with `orderflow repartition` (planned, not in this version yet) "+
					"(README: \"Changing the input's partition count\")",
				changelog, cl, cfg.Topics.Events, in, in))
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, changelog)
		if err != nil {
			return fmt.Errorf("describing %s: %w", changelog, err)
		}
		rc, err := rcs.On(changelog, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return fmt.Errorf("describing %s: %w", changelog, err)
		}
		policy := "delete"
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				policy = *c.Value
			}
		}
		if policy != "compact" {
			problems = append(problems, fmt.Sprintf(
				"changelog %s has cleanup.policy=%s, it must be compact (otherwise state is deleted by time or size); "+
					"fix it with: kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact",
				changelog, policy, changelog))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrTopology, strings.Join(problems, "; "))
	}
	return nil
}
