package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrTopology is matched by errors about the topic layout that stop start-up
// (a changelog that is not co-partitioned with the input, or not compacted).
var ErrTopology = errors.New("bad topic layout")

// EnsureTopics creates the topics that are missing and checks the layout:
// the changelog must have as many partitions as the input and be
// cleanup.policy=compact. Missing topics get the input's partition count (or
// cfg.Partitions when the input is missing too), replication factor
// cfg.ReplicationFactor (0: min(3, brokers)) and, with a replication factor
// of 3 or more, min.insync.replicas=2 (MinInsyncReplicas). Existing topics
// are not altered. After creating topics it waits until every broker knows
// them (cfg.Brokers seeds a client of its own for that), so that nothing
// that follows meets a broker that has not applied them yet. kadm answers
// from its client's metadata cache: give that client a short
// kgo.MetadataMinAge, or EnsureTopics waits up to the cache's age (5 s by
// default) to see the topics it created.
func EnsureTopics(ctx context.Context, adm *kadm.Client, cfg Config) error {
	return ensureTopics(ctx, adm, cfg, true)
}

// ensureTopics is EnsureTopics; with createChangelog false, a missing
// changelog is left missing (checkTopics then reports it).
func ensureTopics(ctx context.Context, adm *kadm.Client, cfg Config, createChangelog bool) error {
	cfg = cfg.withDefaults()
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
	st, err := readLayoutFrom(ctx, adm, cfg, td)
	if err != nil {
		return err
	}
	changelog, err := st.current(cfg.AppID) // changelogs.go
	if err != nil {
		return err
	}
	all := []string{cfg.Topics.Events, cfg.Topics.Status, cfg.Topics.Rejections, cfg.Topics.DLQ, changelog}
	partitions := cfg.Partitions
	if in, ok := td[cfg.Topics.Events]; ok && in.Err == nil {
		partitions = int32(len(in.Partitions))
	}
	var created, existing []string
	for _, t := range all {
		if d, ok := td[t]; ok && d.Err == nil {
			if t != cfg.Topics.Events {
				existing = append(existing, t)
			}
			continue
		}
		if t == changelog && !createChangelog {
			continue
		}
		configs := map[string]*string{}
		if t == changelog {
			configs["cleanup.policy"] = kadm.StringPtr("compact")
		}
		if isr := MinInsyncReplicas(rf); isr > 0 {
			configs["min.insync.replicas"] = kadm.StringPtr(strconv.Itoa(isr))
		}
		resp, err := adm.CreateTopic(ctx, partitions, rf, configs, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s (%d partitions, replication factor %d): %w", t, partitions, rf, err)
		}
		cfg.Logger.Info("created topic", "topic", t, "partitions", partitions, "replication_factor", rf)
		created = append(created, t)
	}
	if len(created) > 0 {
		// A created topic reaches each broker's metadata a moment later;
		// a broker that has not applied it yet answers requests about it
		// with UNKNOWN_TOPIC_OR_PARTITION.
		if err := waitEveryBroker(ctx, cfg, created); err != nil {
			return err
		}
	}
	warnDurability(ctx, adm, cfg, existing)
	return checkTopics(ctx, adm, cfg, changelog)
}

// MinInsyncReplicas is the min.insync.replicas EnsureTopics gives the topics
// it creates with replication factor rf: rf-1 capped at 2, as Kafka advises
// for producers with acks=all (orderflow's), so that a write is on two
// brokers before it is acknowledged and one broker may be down. 0 (the
// broker's default) below a replication factor of 3: with 2 replicas,
// min.insync.replicas=2 would stop every write while either broker is down.
func MinInsyncReplicas(rf int16) int {
	if rf < 3 {
		return 0
	}
	return 2
}

// topicsWait bounds how long EnsureTopics waits for created topics to reach
// every broker, and checkTopics retries a describe of a topic a broker does
// not know yet.
const topicsWait = 30 * time.Second

// waitEveryBroker waits until every broker of the cluster answers a
// metadata request for topics with every partition led.
func waitEveryBroker(ctx context.Context, cfg Config, topics []string) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.KafkaOpts...)...)
	if err != nil {
		return fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	var missing string
	for deadline := time.Now().Add(topicsWait); ; {
		missing, err = unknownSomewhere(ctx, cl, req)
		if err == nil && missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("waiting for the created topics to reach every broker: %w", err)
			}
			return fmt.Errorf("waiting for the created topics to reach every broker: after %v, %s", topicsWait, missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unknownSomewhere asks every broker for the topics of req and describes
// the first that one does not know yet, or with a partition without a
// leader ("" if every broker knows them all).
func unknownSomewhere(ctx context.Context, cl *kgo.Client, req *kmsg.MetadataRequest) (string, error) {
	first, err := req.RequestWith(ctx, cl)
	if err != nil {
		return "", err
	}
	for _, b := range first.Brokers {
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err != nil {
			return "", fmt.Errorf("broker %d: %w", b.NodeID, err)
		}
		for _, t := range resp.Topics {
			name := "?"
			if t.Topic != nil {
				name = *t.Topic
			}
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				return fmt.Sprintf("broker %d does not know topic %s yet (%v)", b.NodeID, name, err), nil
			}
			if len(t.Partitions) == 0 {
				return fmt.Sprintf("broker %d knows no partition of topic %s yet", b.NodeID, name), nil
			}
			for _, p := range t.Partitions {
				if p.Leader < 0 || p.ErrorCode != 0 {
					return fmt.Sprintf("broker %d has no leader for %s partition %d yet", b.NodeID, name, p.Partition), nil
				}
			}
		}
	}
	return "", nil
}

// warnDurability warns about existing topics orderflow writes to that have
// three or more replicas but min.insync.replicas=1: a write acknowledged by
// one broker is lost if that broker fails. EnsureTopics does not change
// topics it did not create; the warning says how to.
func warnDurability(ctx context.Context, adm *kadm.Client, cfg Config, topics []string) {
	if len(topics) == 0 {
		return
	}
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return
	}
	rcs, err := describeConfigs(ctx, adm, topics...)
	if err != nil {
		return
	}
	for _, t := range topics {
		rf := 0
		for _, p := range td[t].Partitions {
			rf = max(rf, len(p.Replicas))
		}
		rc, err := rcs.On(t, nil)
		if err != nil || rc.Err != nil || rf < 3 {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" && c.Value != nil && *c.Value == "1" {
				cfg.Logger.Warn("topic has min.insync.replicas=1 with 3 or more replicas: an acknowledged write is lost if the one broker that has it fails; "+
					"fix it with: kafka-configs --alter --entity-type topics --entity-name "+t+" --add-config min.insync.replicas=2",
					"topic", t, "replication_factor", rf)
			}
		}
	}
}

// describeConfigs describes the configs of topics, retrying for a bounded
// time while a broker answers UNKNOWN_TOPIC_OR_PARTITION (it has not yet
// applied a topic created a moment ago).
func describeConfigs(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.ResourceConfigs, error) {
	for deadline := time.Now().Add(topicsWait); ; {
		rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
		unknown := errors.Is(err, kerr.UnknownTopicOrPartition)
		for _, rc := range rcs {
			unknown = unknown || errors.Is(rc.Err, kerr.UnknownTopicOrPartition)
		}
		if !unknown || time.Now().After(deadline) {
			return rcs, err
		}
		select {
		case <-ctx.Done():
			return rcs, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkTopics checks the topic layout with changelog as the changelog,
// without changing anything.
func checkTopics(ctx context.Context, adm *kadm.Client, cfg Config, changelog string) error {
	cfg = cfg.withDefaults()
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
					"if partitions were added to the input, stop every instance and move the state to %d partitions with `orderflow repartition --app-id %s --partitions %d` "+
					"(README: \"Changing the input's partition count\")",
				changelog, cl, cfg.Topics.Events, in, in, cfg.AppID, in))
		}
		rcs, err := describeConfigs(ctx, adm, changelog)
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
