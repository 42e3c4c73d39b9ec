package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/statestore"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The application reset (orderflow reset) makes the next run reprocess the
// input from a chosen position with state rebuilt from nothing, as Kafka
// Streams' application reset tool does, without a store anywhere serving
// state from before the reset:
//
//  1. it refuses while the consumer group has members (running instances)
//     or the changelog has an open transaction (a crashed instance's, until
//     it times out);
//  2. it deletes the changelog and creates it again, empty, with the same
//     partitions, replication and topic settings (deleting rather than
//     truncating: Kafka refuses to delete records of a topic that is only
//     compacted);
//  3. it commits the group's offsets of the input topic at the position;
//  4. it writes a reset marker as the changelog's first record of
//     partition 0 (an empty key, which restores skip, and a JSON value;
//     compaction keeps it, as no other record has its key);
//  5. it deletes the local state directory it is given.
//
// A state store elsewhere (another instance's) still holds state of the
// old changelog. The processor already refuses such a store at start-up
// (ErrChangelogLost: the changelog it came from is gone); when the live
// changelog starts with a reset marker, it discards the store's state
// instead and rebuilds it from the changelog, which is what the reset asked
// for. The marker comes last of the Kafka steps: until it is written, a
// store of the old changelog refuses to start (ErrChangelogLost), so a
// reset killed halfway never has old state meet reprocessed events or new
// events meet an emptied state; running it again finishes the job.

// HeaderReset is on the reset marker, the first record of a reset
// changelog's partition 0.
const HeaderReset = "orderflow.reset"

// ResetMarker is the value of the reset marker.
type ResetMarker struct {
	ResetAt         time.Time `json:"reset_at"`
	PreviousTopicID string    `json:"previous_topic_id,omitempty"` // the changelog before the reset
	Input           string    `json:"input"`                       // the input topic
	To              string    `json:"to"`                          // where the input offsets went
}

// ResetTo is where a reset moves the group's input offsets.
type ResetTo int

// The positions of a reset.
const (
	ResetToEarliest ResetTo = iota // the first offset each partition holds
	ResetToLatest                  // the end: reprocess nothing, only rebuild state from what follows
	ResetToTime                    // the first record at or after ResetConfig.At
)

// ErrGroupActive is matched by the error of a reset refused because the
// application's consumer group has members.
var ErrGroupActive = errors.New("the application's instances are running")

// ErrResetDeclined: the confirmation was declined.
var ErrResetDeclined = errors.New("reset declined; nothing changed")

// ResetConfig configures Reset.
type ResetConfig struct {
	Brokers   []string
	KafkaOpts []kgo.Opt
	AppID     string // default DefaultAppID
	Events    string // input topic; default DefaultEventsTopic
	To        ResetTo
	At        time.Time // for ResetToTime
	// StateDir is a local state directory to delete ("": none).
	StateDir string
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Out receives the plan and the progress. Default io.Discard.
	Out io.Writer
	// Confirm is asked after the plan is printed; false stops the reset
	// with ErrResetDeclined. Nil: proceed.
	Confirm func() bool
}

// Reset resets an application: see the comment above ResetMarker's
// declaration. Errors: ErrGroupActive, ErrResetDeclined, ErrConfig, or the
// failure of a step (running Reset again finishes the job).
func Reset(ctx context.Context, c ResetConfig) error {
	if c.AppID == "" {
		c.AppID = DefaultAppID
	}
	if c.Events == "" {
		c.Events = DefaultEventsTopic
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	if c.StateDir != "" {
		if err := checkStateDir(c.StateDir); err != nil {
			return err
		}
	}
	say := func(format string, args ...any) { fmt.Fprintf(c.Out, format+"\n", args...) }
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.MetadataMinAge(adminMetadataAge),
		kgo.ClientID(c.AppID + "-reset"), kgo.RecordPartitioner(kgo.ManualPartitioner())}, c.KafkaOpts...)...)
	if err != nil {
		return fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	group := c.AppID

	if err := groupIdle(ctx, adm, group); err != nil {
		return err
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	in, ok := td[c.Events]
	if !ok || in.Err != nil {
		return fmt.Errorf("%w: input topic %s does not exist (--events-topic)", ErrConfig, c.Events)
	}
	// After `orderflow repartition` the state lives in another changelog.
	lcfg := Config{AppID: c.AppID}
	lcfg.Topics.Events = c.Events
	layout, err := readLayoutFrom(ctx, adm, lcfg.withDefaults(), td)
	if err != nil {
		return err
	}
	changelog, err := layout.current(c.AppID)
	if err != nil {
		return err
	}
	targets, to, err := resetTargets(ctx, adm, c)
	if err != nil {
		return err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("reading the offsets of group %s: %w", group, err)
	}
	old, hasChangelog := td[changelog]
	hasChangelog = hasChangelog && old.Err == nil
	if hasChangelog {
		if err := noOpenTransaction(ctx, adm, changelog); err != nil {
			return err
		}
	}

	// The plan.
	say("Reset of application %s (consumer group %s):", c.AppID, group)
	say("- input %s: the group's offsets move to %s (the next run reprocesses from there):", c.Events, to)
	parts := slices.Sorted(func(yield func(int32) bool) {
		for p := range in.Partitions {
			if !yield(p) {
				return
			}
		}
	})
	for _, p := range parts {
		from := "none"
		if o, ok := committed.Lookup(c.Events, p); ok && o.Err == nil && o.At >= 0 {
			from = strconv.FormatInt(o.At, 10)
		}
		t, _ := targets.Lookup(c.Events, p)
		say("    partition %d: %s -> %d", p, from, t.Offset)
	}
	if hasChangelog {
		say("- changelog %s (%d partitions): deleted and created again, empty, with the same settings; the next run rebuilds the state by reprocessing", changelog, len(old.Partitions))
	} else {
		say("- changelog %s: missing; created, empty", changelog)
	}
	if c.StateDir != "" {
		say("- state directory %s: deleted", c.StateDir)
	}
	say("- other instances' state directories: each discards its state when its instance starts (it sees the reset); delete them to save the time")
	say("- output topics: kept. The second pass appends one new outcome per reprocessed event after the first pass's; give run other --status-topic, --rejections-topic and --dlq-topic to write it elsewhere")
	if c.DryRun {
		say("Dry run: nothing changed.")
		return nil
	}
	if c.Confirm != nil && !c.Confirm() {
		return ErrResetDeclined
	}

	// The group may have gained a member while the plan was read.
	if err := groupIdle(ctx, adm, group); err != nil {
		return err
	}
	var prevID string
	if hasChangelog {
		prevID = kadm.TopicID(old.ID).String()
	}
	if err := recreateChangelog(ctx, adm, c, changelog, old, hasChangelog, len(in.Partitions)); err != nil {
		return err
	}
	offsets := kadm.Offsets{}
	targets.Each(func(o kadm.ListedOffset) {
		offsets.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
	})
	resp, err := adm.CommitOffsets(ctx, group, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("committing the offsets of group %s: %w (run the reset again)", group, err)
	}
	say("offsets of group %s committed", group)
	marker, _ := json.Marshal(ResetMarker{ResetAt: time.Now().UTC(), PreviousTopicID: prevID, Input: c.Events, To: to})
	r := &kgo.Record{Topic: changelog, Partition: 0, Key: []byte{}, Value: marker, Headers: []kgo.RecordHeader{{Key: HeaderReset, Value: []byte("1")}}}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("writing the reset marker to %s: %w (run the reset again)", changelog, err)
	}
	say("reset marker written to changelog %s", changelog)

	if c.StateDir != "" {
		if err := os.RemoveAll(c.StateDir); err != nil {
			return fmt.Errorf("deleting state directory %s: %w", c.StateDir, err)
		}
		say("state directory %s deleted", c.StateDir)
	}
	say("Reset done. Start the instances; they rebuild the state by reprocessing %s from %s.", c.Events, to)
	return nil
}

// groupIdle returns an ErrGroupActive error naming the group's members, if
// it has any.
func groupIdle(ctx context.Context, adm *kadm.Client, group string) error {
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describing group %s: %w", group, err)
	}
	g := gs[group]
	if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("describing group %s: %w", group, g.Err)
	}
	if len(g.Members) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var names []string
	for _, m := range g.Members {
		name := fmt.Sprintf("instance %s on %s", strings.TrimPrefix(m.ClientID, group+"-"), strings.TrimPrefix(m.ClientHost, "/"))
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return fmt.Errorf("%w: consumer group %s has %d members (%s); stop every instance of the application, then reset",
		ErrGroupActive, group, len(g.Members), strings.Join(names, ", "))
}

// resetTargets lists the input offsets of c.To.
func resetTargets(ctx context.Context, adm *kadm.Client, c ResetConfig) (kadm.ListedOffsets, string, error) {
	var (
		l   kadm.ListedOffsets
		err error
		to  string
	)
	switch c.To {
	case ResetToEarliest:
		to = "the earliest offsets"
		l, err = adm.ListStartOffsets(ctx, c.Events)
	case ResetToLatest:
		to = "the end"
		l, err = adm.ListEndOffsets(ctx, c.Events)
	case ResetToTime:
		to = "the first records at or after " + c.At.UTC().Format(time.RFC3339Nano)
		l, err = adm.ListOffsetsAfterMilli(ctx, c.At.UnixMilli(), c.Events)
	default:
		return nil, "", fmt.Errorf("%w: unknown reset position %d", ErrConfig, c.To)
	}
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing the offsets of %s: %w", c.Events, err)
	}
	return l, to, nil
}

// noOpenTransaction refuses while a transaction holds back the last stable
// offset of a partition of topic.
func noOpenTransaction(ctx context.Context, adm *kadm.Client, topic string) error {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	hw := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) { hw[e.Partition] = e.Offset })
	open, err := openTransactions(ctx, adm, topic, hw)
	if err != nil {
		return err
	}
	if len(open) > 0 {
		return fmt.Errorf("%w: a transaction is still open on %s partitions %s (an instance that stopped without ending it); it is aborted when its --transaction-timeout ends: reset again then",
			ErrGroupActive, topic, strings.Join(open, ", "))
	}
	return nil
}

// transactionEndGrace is how long openTransactions waits for the last
// stable offsets to reach the ends: a transaction that has just ended
// still holds them back until the broker has written its markers.
const transactionEndGrace = 5 * time.Second

// openTransactions returns, in order, the partitions of topic whose last
// stable offset stays below its end in ends (the high watermarks) for
// transactionEndGrace: an open transaction holds it there.
func openTransactions(ctx context.Context, adm *kadm.Client, topic string, ends map[int32]int64) ([]string, error) {
	deadline := time.Now().Add(transactionEndGrace)
	for {
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = stable.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing the last stable offsets of %s: %w", topic, err)
		}
		var open []int32
		stable.Each(func(s kadm.ListedOffset) {
			if s.Offset < ends[s.Partition] {
				open = append(open, s.Partition)
			}
		})
		if len(open) == 0 || time.Now().After(deadline) {
			slices.Sort(open)
			out := make([]string, len(open))
			for i, p := range open {
				out[i] = strconv.Itoa(int(p))
			}
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkStateDir refuses to delete a directory that is not a state store
// nobody has open.
func checkStateDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*")); len(m) == 0 {
		return fmt.Errorf("%w: --state-dir %s does not hold a state store; not deleting it", ErrConfig, dir)
	}
	s, err := statestore.Open(statestore.Options{Dir: dir})
	if errors.Is(err, statestore.ErrInUse) {
		return fmt.Errorf("%w: --state-dir: %w", ErrGroupActive, err)
	}
	if err == nil {
		_ = s.Close()
	}
	// A store that does not open (corrupt, unknown format) is deleted all
	// the same: it is to be rebuilt.
	return nil
}

// recreateChangelog deletes changelog (if it exists) and creates it again
// with old's partitions, replication factor and topic settings; a missing
// changelog is created as run creates it.
func recreateChangelog(ctx context.Context, adm *kadm.Client, c ResetConfig, changelog string, old kadm.TopicDetail, exists bool, inputPartitions int) error {
	partitions := int32(inputPartitions)
	var rf int16
	configs := map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
	if exists {
		partitions = int32(len(old.Partitions))
		rf = int16(old.Partitions.NumReplicas())
		rcs, err := adm.DescribeTopicConfigs(ctx, changelog)
		if err == nil {
			var rc kadm.ResourceConfig
			if rc, err = rcs.On(changelog, nil); err == nil {
				err = rc.Err
			}
			for _, cv := range rc.Configs {
				if cv.Source == kmsg.ConfigSourceDynamicTopicConfig && cv.Value != nil {
					configs[cv.Key] = cv.Value
				}
			}
		}
		if err != nil {
			return fmt.Errorf("reading the settings of %s: %w", changelog, err)
		}
		resp, err := adm.DeleteTopic(ctx, changelog)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("deleting %s: %w", changelog, err)
		}
		fmt.Fprintf(c.Out, "changelog %s deleted\n", changelog)
	} else {
		brokers, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("reading cluster metadata: %w", err)
		}
		rf = int16(min(3, len(brokers.Brokers)))
		if isr := MinInsyncReplicas(rf); isr > 0 {
			configs["min.insync.replicas"] = kadm.StringPtr(strconv.Itoa(isr))
		}
	}
	// The broker takes a moment to forget a deleted topic.
	for deadline := time.Now().Add(time.Minute); ; {
		resp, err := adm.CreateTopic(ctx, partitions, rf, configs, changelog)
		if err == nil {
			err = resp.Err
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) || time.Now().After(deadline) {
			return fmt.Errorf("creating %s again (%d partitions, replication factor %d): %w (run the reset again)", changelog, partitions, rf, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return waitEveryBroker(ctx, Config{Brokers: c.Brokers, KafkaOpts: c.KafkaOpts}, []string{changelog})
}

// resetMarker returns the reset marker of the live changelog, if it starts
// with one.
func (p *Processor) resetMarker(ctx context.Context) (ResetMarker, bool, error) {
	var m ResetMarker
	starts, err := p.adm.ListStartOffsets(ctx, p.changelog)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = p.adm.ListEndOffsets(ctx, p.changelog)
	}
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return m, false, fmt.Errorf("listing the offsets of %s: %w", p.changelog, err)
	}
	start, _ := starts.Lookup(p.changelog, 0)
	end, _ := ends.Lookup(p.changelog, 0)
	if end.Offset <= start.Offset {
		return m, false, nil
	}
	cl, err := kgo.NewClient(append(p.connOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.changelog: {0: kgo.NewOffset().At(start.Offset)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return m, false, fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollRecords(rctx, 1)
		if err := fs.Err0(); err != nil {
			return m, false, fmt.Errorf("reading the first record of %s partition 0: %w", p.changelog, err)
		}
		if rs := fs.Records(); len(rs) > 0 {
			r := rs[0]
			for _, h := range r.Headers {
				if h.Key == HeaderReset && len(r.Key) == 0 && json.Unmarshal(r.Value, &m) == nil {
					return m, true, nil
				}
			}
			return m, false, nil
		}
	}
}

// discardIfReset drops every partition of the store and records live as
// its changelog if the live changelog starts with a reset marker: the
// store's state predates the reset. It reports whether it did.
func (p *Processor) discardIfReset(ctx context.Context, live statestore.ChangelogSource, parts []int32) (bool, error) {
	m, ok, err := p.resetMarker(ctx)
	if err != nil || !ok {
		return false, err
	}
	p.log.Warn("the state store predates a reset of the application; discarding its state, which the changelog rebuilds",
		"state_dir", p.cfg.StateDir, "changelog", p.changelog, "reset_at", m.ResetAt, "partitions", len(parts))
	if err := p.store.Adopt(live, nil, parts); err != nil {
		return false, fmt.Errorf("%w: %w", ErrFatal, err)
	}
	return true, nil
}
