package processor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/orderflow/orderflow/internal/kread"
	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrRefused is matched by the errors with which Repartition refuses to
// start or to finish because of the application's state (members in the
// group, unprocessed input, records produced while it ran). Nothing of the
// layout in use was changed; the error says what to do.
var ErrRefused = errors.New("repartition refused")

// RepartitionOptions configure Repartition.
type RepartitionOptions struct {
	// Partitions is the new partition count: more than the state has now.
	Partitions int
	// Partitioner is how the producers of the input choose an order's
	// partition. Default partitioner.Murmur2 (Kafka's Java client, franz-go);
	// partitioner.CRC32 for librdkafka's default. Repartition checks that
	// every order's state is where it puts the order under the current
	// count, and refuses if one is not.
	Partitioner partitioner.Name
	// Progress receives one line per step. Default: none.
	Progress func(line string)
	// Checkpoint, if set, is called at points where a crash must leave a
	// usable layout: "copy" after every copyCheckpoint records handed to
	// the producer, "verified" after the copy was verified and before the
	// checks that nothing moved meanwhile, "grown" after the input grew and
	// before the switch.
	// Tests block in it to kill the process there.
	Checkpoint func(stage string)
}

// RepartitionResult says what Repartition did.
type RepartitionResult struct {
	From, To      int    // partition counts
	OldChangelog  string // deleted at the end
	NewChangelog  string
	Orders        int           // orders copied
	Records       int           // records read from the old changelog
	Copy, Total   time.Duration // copying and verifying; the whole run
	AlreadyDone   bool          // a previous run had switched; this one only cleaned up
	DeletedTopics []string
}

// copyCheckpoint is how many copied records Checkpoint("copy") is called
// after.
const copyCheckpoint = 256

// Repartition moves an application to a new partition count: the input
// topic gets opts.Partitions partitions and every order's state moves to the
// changelog partition its key hashes to under that count. Every instance
// must be stopped and the input's producers paused while it runs; it
// refuses (ErrRefused) if the group has members or unprocessed input, and
// refuses to finish if the input's end offsets moved while it ran.
//
// It is safe to kill at any moment: it writes the new layout's state to a
// changelog topic of its own (RepartitionedChangelogTopic), created without
// compaction, verifies it against the old one, grows the input, and only
// then turns compaction on, which makes it the current changelog
// (CurrentChangelog). Killed before that, the old layout is intact (if the
// input already grew, instances refuse to start until Repartition is run
// again); after it, the new one is. Running it again finishes the job. The
// old changelog is deleted at the end.
func Repartition(ctx context.Context, cfg Config, opts RepartitionOptions) (RepartitionResult, error) {
	start := time.Now()
	cfg = cfg.withDefaults()
	if len(cfg.Brokers) == 0 {
		return RepartitionResult{}, fmt.Errorf("%w: Config.Brokers is empty: no brokers (HOST:PORT[,HOST:PORT])", ErrConfig)
	}
	if opts.Partitioner == partitioner.None {
		opts.Partitioner = partitioner.Murmur2
	}
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	if opts.Checkpoint == nil {
		opts.Checkpoint = func(string) {}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.MetadataMinAge(adminMetadataAge)}, cfg.KafkaOpts...)...)
	if err != nil {
		return RepartitionResult{}, fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer cl.Close()
	r := &repartitioner{cfg: cfg, opts: opts, adm: kadm.NewClient(cl), n: opts.Partitions}
	res, err := r.run(ctx)
	res.Total = time.Since(start)
	return res, err
}

type repartitioner struct {
	cfg  Config
	opts RepartitionOptions
	adm  *kadm.Client
	n    int // the new partition count

	old, next string // changelogs
	m         int    // the old partition count
}

func (r *repartitioner) say(format string, args ...any) {
	r.opts.Progress(fmt.Sprintf(format, args...))
}

func (r *repartitioner) run(ctx context.Context) (RepartitionResult, error) {
	app, input := r.cfg.AppID, r.cfg.Topics.Events
	res := RepartitionResult{To: r.n}
	st, err := readLayout(ctx, r.adm, r.cfg)
	if err != nil {
		return res, err
	}
	if st.input == 0 {
		return res, fmt.Errorf("%w: input topic %s does not exist", ErrConfig, input)
	}
	r.next = RepartitionedChangelogTopic(app, r.n)
	res.NewChangelog = r.next
	next, nextExists := st.find(r.next)
	if nextExists && next.compact && st.input == r.n {
		// A previous run switched and was stopped before it cleaned up.
		res.AlreadyDone, res.From = true, r.n
		r.say("the state is already in %s (%d partitions) and the input has %d partitions: the repartition was done; cleaning up", r.next, r.n, st.input)
		res.DeletedTopics, err = r.deleteOld(ctx, st)
		return res, err
	}
	old, ok := st.last(app, r.n)
	if !ok {
		if cur, cerr := st.current(app); cerr == nil {
			if c, ok := st.find(cur); ok && c.partitions >= r.n {
				return res, fmt.Errorf("%w: RepartitionOptions.Partitions %d must be larger than the %d partitions of the state now (changelog %s): Kafka cannot take partitions away",
					ErrConfig, r.n, c.partitions, cur)
			}
		}
		return res, fmt.Errorf("%w: application %s has no changelog topic (%s): nothing to repartition; is Config.AppID right? "+
			"An application that never ran has no state: grow its input with kafka-topics --alter --partitions instead",
			ErrConfig, app, ChangelogTopic(app))
	}
	r.old, r.m = old.name, old.partitions
	res.OldChangelog, res.From = r.old, r.m
	switch {
	case st.input > r.n:
		return res, fmt.Errorf("%w: RepartitionOptions.Partitions %d: input %s already has %d partitions; the state must have as many: use RepartitionOptions.Partitions %d",
			ErrConfig, r.n, input, st.input, st.input)
	case st.input != r.m && st.input != r.n:
		return res, fmt.Errorf("%w: RepartitionOptions.Partitions %d: input %s has %d partitions (grown outside orderflow repartition?) and the state %d; "+
			"the state can only move to the input's count: use RepartitionOptions.Partitions %d",
			ErrConfig, r.n, input, st.input, r.m, st.input)
	case nextExists && next.partitions != r.n:
		return res, fmt.Errorf("%w: topic %s exists with %d partitions, not %d: it is not one repartition wrote; delete it and run again",
			ErrTopology, r.next, next.partitions, r.n)
	case nextExists && next.compact:
		return res, fmt.Errorf("%w: topic %s exists and is compacted but input %s has %d partitions, not %d: it is not one repartition wrote; delete it and run again",
			ErrTopology, r.next, input, st.input, r.n)
	}
	r.say("repartitioning application %s: input %s and changelog %s, %d partitions -> %d (changelog %s)", app, input, r.old, r.m, r.n, r.next)
	r.say("producers writing to %s must stay paused until this ends: records written meanwhile make it refuse to finish", input)

	// Preconditions, and the offsets that must not move until the switch.
	if err := r.checkIdle(ctx); err != nil {
		return res, err
	}
	inEnds, err := r.ends(ctx, input)
	if err != nil {
		return res, err
	}
	oldEnds, err := r.ends(ctx, r.old)
	if err != nil {
		return res, err
	}
	if err := r.noOpenTransaction(ctx, oldEnds); err != nil {
		return res, err
	}
	r.say("preconditions hold: group %s has no members and no unprocessed input", app)

	if !nextExists {
		if err := r.createNext(ctx); err != nil {
			return res, err
		}
	}
	copyStart := time.Now()
	want, records, err := r.copy(ctx)
	if err != nil {
		return res, err
	}
	res.Orders, res.Records = len(want), records
	if err := r.verify(ctx, want); err != nil {
		return res, err
	}
	res.Copy = time.Since(copyStart)
	r.say("verified %s: %d orders, each in the partition its key hashes to under %d partitions", r.next, len(want), r.n)
	r.opts.Checkpoint("verified")

	if err := r.unmoved(ctx, input, inEnds, "input"); err != nil {
		return res, err
	}
	if err := r.unmoved(ctx, r.old, oldEnds, "changelog"); err != nil {
		return res, err
	}
	if err := r.checkIdle(ctx); err != nil {
		return res, err
	}
	if st.input < r.n {
		if err := r.grow(ctx); err != nil {
			return res, err
		}
	}
	r.opts.Checkpoint("grown")
	if err := r.switchTo(ctx); err != nil {
		return res, err
	}
	r.say("switched: %s is the changelog of %s; the input %s has %d partitions", r.next, app, input, r.n)
	// Records written between the last check and the switch would be in
	// partitions chosen by the old count.
	if err := r.unmoved(ctx, input, inEnds, "input"); err != nil {
		return res, fmt.Errorf("the new layout is in place, but %w", err)
	}
	if st, err = readLayout(ctx, r.adm, r.cfg); err != nil {
		return res, err
	}
	res.DeletedTopics, err = r.deleteOld(ctx, st)
	return res, err
}

// checkIdle refuses while the group has members or unprocessed input.
func (r *repartitioner) checkIdle(ctx context.Context) error {
	app, input := r.cfg.AppID, r.cfg.Topics.Events
	gs, err := r.adm.DescribeGroups(ctx, app)
	if err != nil {
		return fmt.Errorf("describing group %s: %w", app, err)
	}
	if g, ok := gs[app]; ok && g.Err == nil && len(g.Members) > 0 {
		var who []string
		for _, m := range g.Members {
			who = append(who, fmt.Sprintf("%s (client %s on %s)", m.MemberID, m.ClientID, m.ClientHost))
		}
		return fmt.Errorf("%w: group %s has %d members, stop every instance of the application first: %s",
			ErrRefused, app, len(g.Members), strings.Join(who, ", "))
	}
	committed, err := r.adm.FetchOffsets(ctx, app)
	if err != nil {
		return fmt.Errorf("reading the committed offsets of group %s: %w", app, err)
	}
	starts, err := r.adm.ListStartOffsets(ctx, input)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the start offsets of %s: %w", input, err)
	}
	ends, err := r.ends(ctx, input)
	if err != nil {
		return err
	}
	var lag int64
	var behind []string
	for part, end := range ends {
		from := int64(0)
		if s, ok := starts.Lookup(input, part); ok {
			from = s.Offset
		}
		if c, ok := committed.Lookup(input, part); ok && c.Err == nil && c.At >= 0 {
			from = max(from, c.At)
		}
		if end > from {
			lag += end - from
			behind = append(behind, fmt.Sprintf("%d: %d", part, end-from))
		}
	}
	if lag > 0 {
		sort.Strings(behind)
		return fmt.Errorf("%w: group %s has not processed %d records of %s (partition: records %s): "+
			"pause the producers, run the instances until the lag is 0, stop them, then run repartition again",
			ErrRefused, app, lag, input, strings.Join(behind, ", "))
	}
	return nil
}

// noOpenTransaction refuses while a transaction is open on the old
// changelog (ends are its high watermarks): a stopped instance's last
// transaction ends at its timeout, and the copy reads committed records only.
func (r *repartitioner) noOpenTransaction(ctx context.Context, ends map[int32]int64) error {
	open, err := openTransactions(ctx, r.adm, r.old, ends)
	if err != nil {
		return err
	}
	if len(open) > 0 {
		return fmt.Errorf("%w: changelog %s has an open transaction in partitions %s (an instance stopped without ending it): "+
			"run repartition again once the transaction timeout has passed", ErrRefused, r.old, strings.Join(open, ", "))
	}
	return nil
}

// ends lists the end offsets (high watermarks) of topic by partition.
func (r *repartitioner) ends(ctx context.Context, topic string) (map[int32]int64, error) {
	l, err := r.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// unmoved refuses if topic's end offsets differ from was (partitions added
// since must be empty).
func (r *repartitioner) unmoved(ctx context.Context, topic string, was map[int32]int64, what string) error {
	now, err := r.ends(ctx, topic)
	if err != nil {
		return err
	}
	var moved []string
	var n int64
	for part, end := range now {
		if d := end - was[part]; d != 0 {
			n += d
			moved = append(moved, fmt.Sprintf("partition %d: %d -> %d", part, was[part], end))
		}
	}
	if len(moved) == 0 {
		return nil
	}
	sort.Strings(moved)
	if what == "input" {
		return fmt.Errorf("%w: %d records were written to %s while repartition ran (%s): its producers were not paused. "+
			"Pause them, run the instances until the lag is 0, stop them, then run repartition again",
			ErrRefused, n, topic, strings.Join(moved, ", "))
	}
	return fmt.Errorf("%w: changelog %s changed while repartition ran (%s): an instance ran. Stop every instance and run repartition again",
		ErrRefused, topic, strings.Join(moved, ", "))
}

// createNext creates the new changelog without compaction and without time
// or size retention (it must not be the current changelog before it is
// complete; see changelogs.go), with the old one's replication factor and
// the settings given to it (max.message.bytes and so on).
func (r *repartitioner) createNext(ctx context.Context) error {
	td, err := r.adm.ListTopics(ctx, r.old)
	if err == nil {
		err = td.Error()
	}
	if err != nil {
		return fmt.Errorf("describing %s: %w", r.old, err)
	}
	rf := int16(0)
	for _, p := range td[r.old].Partitions {
		rf = max(rf, int16(len(p.Replicas)))
	}
	configs := map[string]*string{}
	rcs, err := describeConfigs(ctx, r.adm, r.old)
	if err != nil {
		return fmt.Errorf("describing %s: %w", r.old, err)
	}
	if rc, err := rcs.On(r.old, nil); err == nil && rc.Err == nil {
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.Value != nil && !c.Sensitive {
				configs[c.Key] = kadm.StringPtr(*c.Value)
			}
		}
	}
	configs["cleanup.policy"] = kadm.StringPtr("delete")
	configs["retention.ms"] = kadm.StringPtr("-1")
	configs["retention.bytes"] = kadm.StringPtr("-1")
	resp, err := r.adm.CreateTopic(ctx, int32(r.n), rf, configs, r.next)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %s (%d partitions, replication factor %d): %w", r.next, r.n, rf, err)
	}
	if err := waitEveryBroker(ctx, r.cfg, []string{r.next}); err != nil {
		return err
	}
	r.say("created %s: %d partitions, replication factor %d, not compacted until the switch", r.next, r.n, rf)
	return nil
}

// valueSeed seeds the hashes of states that the copy is verified by.
var valueSeed = maphash.MakeSeed()

// copy writes the latest state of every order of the old changelog to the
// partition of the new one its key hashes to under the new count, and
// returns the hash of every order's state by key, and how many records it
// read. Each record of the old changelog is copied as it is read
// (tombstones too), which keeps one order's records in order: they come from
// one partition and go to one partition. A copy run again after a crash
// writes the same records again; the latest per key is the same.
func (r *repartitioner) copy(ctx context.Context) (map[string]uint64, int, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5 * time.Millisecond),
	}, r.cfg.KafkaOpts...)...)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer cl.Close()
	var (
		mu   sync.Mutex
		perr error
	)
	want := map[string]uint64{}
	records := 0
	r.say("copying %s to %s", r.old, r.next)
	err = kread.ReadCommitted(ctx, r.cfg.Brokers, r.cfg.KafkaOpts, r.old, func(rec *kgo.Record) error {
		if p := r.opts.Partitioner.Partition(rec.Key, r.m); p != rec.Partition {
			hint := "the input's producers partition by another function, or by hand"
			if o := partitioner.Match(r.opts.Partitioner, rec.Key, rec.Partition, r.m); o != partitioner.None {
				hint = fmt.Sprintf("it is where %s puts it: set RepartitionOptions.Partitioner %s if the input's producers use it", o, o)
			}
			return fmt.Errorf("%w: order %q is in partition %d of %s, but %s puts it in partition %d of %d: %s; nothing was changed",
				ErrRefused, rec.Key, rec.Partition, r.old, r.opts.Partitioner, p, r.m, hint)
		}
		if rec.Value == nil {
			delete(want, string(rec.Key))
		} else {
			want[string(rec.Key)] = maphash.Bytes(valueSeed, rec.Value)
		}
		out := &kgo.Record{
			Topic: r.next, Partition: r.opts.Partitioner.Partition(rec.Key, r.n),
			Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp,
		}
		cl.Produce(ctx, out, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = cmp.Or(perr, err)
				mu.Unlock()
			}
		})
		if records++; records%copyCheckpoint == 0 {
			r.opts.Checkpoint("copy")
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("copying %s to %s: %w", r.old, r.next, err)
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, 0, fmt.Errorf("copying %s to %s: %w", r.old, r.next, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if perr != nil {
		return nil, 0, fmt.Errorf("copying %s to %s: %w", r.old, r.next, perr)
	}
	r.say("copied %d records (%d orders)", records, len(want))
	return want, records, nil
}

// verify reads the new changelog and checks that its latest state of every
// order is the copy's, in the partition the order's key hashes to. Orders it
// holds that the old changelog does not (left by an earlier run that was
// stopped before the switch, of a state since deleted) get a tombstone.
func (r *repartitioner) verify(ctx context.Context, want map[string]uint64) error {
	for attempt := 0; ; attempt++ {
		got := map[string]uint64{}
		var misplaced error
		err := kread.ReadCommitted(ctx, r.cfg.Brokers, r.cfg.KafkaOpts, r.next, func(rec *kgo.Record) error {
			if p := r.opts.Partitioner.Partition(rec.Key, r.n); p != rec.Partition && misplaced == nil {
				misplaced = fmt.Errorf("%w: order %q is in partition %d of %s, it belongs in %d; delete the topic and run again",
					ErrTopology, rec.Key, rec.Partition, r.next, p)
			}
			if rec.Value == nil {
				delete(got, string(rec.Key))
			} else {
				got[string(rec.Key)] = maphash.Bytes(valueSeed, rec.Value)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("verifying %s: %w", r.next, err)
		}
		if misplaced != nil {
			return misplaced
		}
		var extra []string
		for k, h := range got {
			w, ok := want[k]
			if !ok {
				extra = append(extra, k)
			} else if w != h {
				return fmt.Errorf("verifying %s: order %q differs from its state in %s", r.next, k, r.old)
			}
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				return fmt.Errorf("verifying %s: order %q of %s is missing", r.next, k, r.old)
			}
		}
		if len(extra) == 0 {
			return nil
		}
		if attempt > 0 {
			return fmt.Errorf("verifying %s: %d orders remain that %s does not hold, e.g. %q", r.next, len(extra), r.old, extra[0])
		}
		slices.Sort(extra)
		r.say("deleting %d orders an earlier run left in %s that %s no longer holds", len(extra), r.next, r.old)
		if err := r.tombstones(ctx, extra); err != nil {
			return err
		}
	}
}

// tombstones writes a tombstone for each key to the new changelog.
func (r *repartitioner) tombstones(ctx context.Context, keys []string) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, r.cfg.KafkaOpts...)...)
	if err != nil {
		return fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, len(keys))
	for _, k := range keys {
		recs = append(recs, &kgo.Record{Topic: r.next, Partition: r.opts.Partitioner.Partition([]byte(k), r.n), Key: []byte(k)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("writing tombstones to %s: %w", r.next, err)
	}
	return nil
}

// grow gives the input r.n partitions and waits until every broker knows
// them.
func (r *repartitioner) grow(ctx context.Context) error {
	input := r.cfg.Topics.Events
	resp, err := r.adm.UpdatePartitions(ctx, r.n, input)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("growing %s to %d partitions: %w", input, r.n, err)
	}
	if err := waitEveryBroker(ctx, r.cfg, []string{input}); err != nil {
		return err
	}
	r.say("grew %s to %d partitions", input, r.n)
	return nil
}

// switchTo turns compaction on in the new changelog, which makes it the
// current changelog (changelogs.go), and drops the retention overrides that
// kept it whole until then.
func (r *repartitioner) switchTo(ctx context.Context) error {
	resp, err := r.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
		{Op: kadm.DeleteConfig, Name: "retention.bytes"},
	}, r.next)
	if err == nil {
		for _, c := range resp {
			err = cmp.Or(err, c.Err)
		}
	}
	if err != nil {
		return fmt.Errorf("switching to %s (setting cleanup.policy=compact): %w", r.next, err)
	}
	return nil
}

// deleteOld deletes the application's changelogs of layouts before r.next.
func (r *repartitioner) deleteOld(ctx context.Context, st layoutState) ([]string, error) {
	var del []string
	for _, c := range st.changelogs {
		if c.name != r.next && c.partitions < r.n && (c.compact || c.name == ChangelogTopic(r.cfg.AppID)) {
			del = append(del, c.name)
		}
	}
	if len(del) == 0 {
		return nil, nil
	}
	resp, err := r.adm.DeleteTopics(ctx, del...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("deleting the old changelog %s (the new layout is in place; delete it by hand or run repartition again): %w",
			strings.Join(del, ", "), err)
	}
	r.say("deleted the old changelog %s", strings.Join(del, ", "))
	return del, nil
}
