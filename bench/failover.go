package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FailoverOptions configures RunFailover. Zero fields take the defaults in
// brackets (Tiny changes some of them, in braces). Of Options, RunFailover
// uses Brokers, Tiny, Threads (of each instance) [1], Orders (of the
// workload the load replays) [20,000] {500}, WorkDir, OrderflowBin,
// KafkaVersion, TopicPrefix and Log.
type FailoverOptions struct {
	Options
	// Stores are the store sizes, in orders, each run starts with in its
	// changelog [100,000 and 1,000,000] {2,000}.
	Stores []int
	// Standbys are the --standby-replicas values each store size runs with
	// [0 and 1]. A value above 0 needs a binary that has the flag: with
	// one that does not, its runs are reported as not available.
	Standbys []int
	// Rate is the steady input load, records/s over all partitions
	// [3,000] {300}.
	Rate float64
	// Settle is how long the load runs on both instances, each owning
	// its half of the partitions, before the kill [15s] {2s}.
	Settle time.Duration
	// After is how long the latency window runs on after the last of the
	// killed instance's partitions recovered [10s] {1s}.
	After time.Duration
	// Note is printed in the report as is: what the figures do not say,
	// such as other work on the machine.
	Note string
}

func (fo FailoverOptions) withDefaults() FailoverOptions {
	tiny := fo.Tiny
	if len(fo.Stores) == 0 {
		fo.Stores = []int{100_000, 1_000_000}
		if tiny {
			fo.Stores = []int{2_000}
		}
	}
	if len(fo.Standbys) == 0 {
		fo.Standbys = []int{0, 1}
	}
	pick := func(full, small float64) float64 {
		if tiny {
			return small
		}
		return full
	}
	if fo.Rate == 0 {
		fo.Rate = pick(3_000, 300)
	}
	if fo.Settle == 0 {
		fo.Settle = time.Duration(pick(float64(15*time.Second), float64(2*time.Second)))
	}
	if fo.After == 0 {
		fo.After = time.Duration(pick(float64(10*time.Second), float64(time.Second)))
	}
	if fo.Threads == 0 {
		fo.Threads = 1
	}
	if fo.Orders == 0 {
		fo.Orders = int(pick(20_000, 500))
	}
	fo.Only, fo.Curve = nil, nil
	return fo
}

func (fo FailoverOptions) validate() error {
	var errs []error
	if fo.Rate <= 0 || fo.Settle <= 0 || fo.After <= 0 {
		errs = append(errs, errors.New("bench: the failover's rate, settle and after must be positive"))
	}
	for _, s := range fo.Stores {
		if s <= 0 {
			errs = append(errs, fmt.Errorf("bench: store of %d orders: must be positive", s))
		}
	}
	for _, n := range fo.Standbys {
		if n < 0 {
			errs = append(errs, fmt.Errorf("bench: %d standby replicas: must not be negative", n))
		}
	}
	return errors.Join(errs...)
}

// failoverDeadline bounds the wait from the kill until every partition
// of the killed instance has recovered.
func (fo FailoverOptions) failoverDeadline() time.Duration {
	if fo.Tiny {
		return 2 * time.Minute
	}
	return 5 * time.Minute
}

// RunFailover runs the failover benchmark: for each store size and each
// standby count, two `orderflow run` instances under a steady load, one of
// them SIGKILLed once each owns half the partitions; it measures the time
// until every partition of the killed one processes new input again, the
// end-to-end latency over that window and the changelog records the new
// owner restored. Its topics, under Options.TopicPrefix, are deleted when
// it ends.
func RunFailover(ctx context.Context, fo FailoverOptions) (*FailoverReport, error) {
	fo = fo.withDefaults()
	if err := fo.validate(); err != nil {
		return nil, err
	}
	start, up := time.Now(), uptime()
	h, err := newHarness(ctx, fo.Options)
	if err != nil {
		return nil, err
	}
	defer h.close()
	d := processor.DefaultConfig()
	r := &FailoverReport{
		Date: start, Tiny: fo.Tiny, Machine: h.rep.Machine, UptimeBefore: up, Note: fo.Note,
		Settings: FailoverSettings{
			Partitions: h.o.partitions, Instances: 2, Threads: h.o.Threads, Rate: fo.Rate,
			WorkloadOrders: fo.Orders, Settle: fo.Settle.Seconds(), After: fo.After.Seconds(),
			CommitInterval: h.o.commitInterval.String(), Guarantee: string(processor.ExactlyOnce),
			SessionTimeout: d.SessionTimeout.String(), TransactionTimeout: d.TransactionTimeout.String(),
			RestoreConcurrency: d.RestoreConcurrency,
		},
	}
	var bin string
	steps := []step{
		{"workload", h.encodeOnly, true},
		{"binary", func(ctx context.Context) (err error) {
			if bin, err = h.orderflowBinary(ctx); err != nil {
				return err
			}
			r.StandbyFlag = standbyFlagError(bin)
			if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
				r.Orderflow = strings.TrimSpace(string(out))
			}
			return nil
		}, true},
	}
	for _, orders := range fo.Stores {
		for _, n := range fo.Standbys {
			steps = append(steps, step{fmt.Sprintf("failover %d orders, %d standby", orders, n), func(ctx context.Context) error {
				h.settle()
				run, err := h.failover(ctx, fo, bin, orders, n, r.StandbyFlag)
				if err != nil {
					return err
				}
				r.Runs = append(r.Runs, run)
				h.logf("failover: %s", run)
				return nil
			}, true})
		}
	}
	err = h.runSteps(ctx, "failover", steps)
	if err != nil {
		r.Checks = append(r.Checks, fmt.Sprintf("the run stopped: %v", err))
	}
	r.Checks = append(r.Checks, h.rep.Checks...)
	r.UptimeAfter = uptime()
	r.Seconds = time.Since(start).Seconds()
	return r, err
}

// encodeOnly generates and encodes the workload (preload without writing
// it): the failover's load replays it at a steady rate.
func (h *harness) encodeOnly(context.Context) error {
	enc, err := encodeWorkload(workload.Options{Seed: h.o.seed, Orders: h.o.orders}, h.codec, h.machine, time.Now())
	if err != nil {
		return err
	}
	h.enc = enc
	h.logf("workload: %d records, %d orders", enc.len(), enc.orders)
	return nil
}

// standbyFlagError is "" if bin's `run` has --standby-replicas, else why
// the runs with standbys are not available.
func standbyFlagError(bin string) string {
	out, err := exec.Command(bin, "run", "--help").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "--") {
		return fmt.Sprintf("%s run --help: %v", bin, err)
	}
	if !strings.Contains(string(out), "--standby-replicas") {
		return "this orderflow binary has no --standby-replicas flag"
	}
	return ""
}

// FailoverRun is one failover: a store size, a standby count and what
// was measured (times in seconds after the kill).
type FailoverRun struct {
	StoreOrders int `json:"store_orders"`
	Standbys    int `json:"standby_replicas"`
	// Unavailable says why the run did not run (the binary lacks the
	// standby flag or rejected it); empty if it ran.
	Unavailable string `json:"unavailable,omitempty"`
	// Killed are the partitions the killed instance owned.
	Killed []int32 `json:"killed_partitions,omitempty"`
	// Partitions are the killed instance's partitions, one by one.
	Partitions []PartitionFailover `json:"partitions,omitempty"`
	// FailoverMax is the time until the last of them processed an input
	// record produced after the kill; FailoverMedian their median.
	FailoverMax    float64 `json:"failover_max_s"`
	FailoverMedian float64 `json:"failover_median_s"`
	// ChangelogAtKill is the changelog records (end offsets) of the
	// killed instance's partitions at the kill: what a full restore reads.
	ChangelogAtKill int64 `json:"changelog_at_kill"`
	// Restored is the changelog records the survivor restored after the
	// kill, from its orderflow_restored_records_total (-1 if unreadable);
	// RestoredLog the same from its log's "partition restored" lines.
	Restored    int64 `json:"restored_records"`
	RestoredLog int64 `json:"restored_records_log"`
	// Latency is the end-to-end latency (produce to outcome, read
	// read_committed) of every input record produced from the kill to
	// After past the last recovery; Killed of those of the killed
	// instance's partitions; Before of those produced from 11 s to 1 s
	// before the kill (steady state; the last second's input of the
	// killed partitions waits for the failover).
	Latency       LatencyQuantiles `json:"latency"`
	LatencyKilled LatencyQuantiles `json:"latency_killed_partitions"`
	LatencyBefore LatencyQuantiles `json:"latency_before_kill"`
	// Produced is the input records produced, Outcomes the outcomes read.
	Produced int64 `json:"produced"`
	Outcomes int64 `json:"outcomes"`
	// Load is the load average when the run ended.
	Load [3]float64 `json:"load_after"`
}

// PartitionFailover is one of the killed instance's partitions: when the
// survivor was assigned it, when it had restored it (and how many records,
// in how long), and when it processed new input.
type PartitionFailover struct {
	Partition int32   `json:"partition"`
	Assigned  float64 `json:"assigned_s"`
	Restored  float64 `json:"restored_s"`
	Records   int64   `json:"restored_records"`
	Restore   float64 `json:"restore_s"` // its restore's own time
	Recovered float64 `json:"recovered_s"`
}

// LatencyQuantiles are a window's end-to-end latencies, in ms.
type LatencyQuantiles struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

func (r FailoverRun) String() string {
	if r.Unavailable != "" {
		return fmt.Sprintf("%d orders, %d standby: not available (%s)", r.StoreOrders, r.Standbys, r.Unavailable)
	}
	return fmt.Sprintf("%d orders, %d standby: partitions %v recovered in %.2fs at most (median %.2fs); restored %d of %d changelog records; p99 %.0f ms (killed partitions %.0f ms, before the kill %.0f ms)",
		r.StoreOrders, r.Standbys, r.Killed, r.FailoverMax, r.FailoverMedian, r.Restored, r.ChangelogAtKill, r.Latency.P99, r.LatencyKilled.P99, r.LatencyBefore.P99)
}

// failoverOutcome is one outcome read: its partition (that of its input
// record: orderflow writes outcomes keyed by order id, as the input is),
// its input's produce time (its timestamp, ms) and its latency.
type failoverOutcome struct {
	part    int32
	ts      int64
	latency time.Duration
}

// failoverOutcomes collects the outcomes, and the first outcome of each
// partition produced after the kill.
type failoverOutcomes struct {
	kill     atomic.Int64 // unix ms; MaxInt64 until the kill
	received atomic.Int64
	mu       sync.Mutex
	all      []failoverOutcome
	first    map[int32]time.Time
}

func (o *failoverOutcomes) seen(r *kgo.Record, now time.Time) {
	o.received.Add(1)
	part := r.Partition
	if r.Key == nil {
		part = -1 // partitioned at random, not as its input
	}
	ts := r.Timestamp.UnixMilli()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, failoverOutcome{part: part, ts: ts, latency: now.Sub(r.Timestamp)})
	if _, ok := o.first[part]; !ok && part >= 0 && ts > o.kill.Load() {
		o.first[part] = now
	}
}

// recovered returns when each partition first put out the outcome of an
// input produced after the kill.
func (o *failoverOutcomes) recovered() map[int32]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[int32]time.Time, len(o.first))
	for p, t := range o.first {
		out[p] = t
	}
	return out
}

// quantiles are the latencies of the outcomes of input produced in
// [from, to) (unix ms) on the partitions in parts (all if nil).
func (o *failoverOutcomes) quantiles(from, to int64, parts []int32) LatencyQuantiles {
	o.mu.Lock()
	var lats []time.Duration
	for _, x := range o.all {
		if x.ts >= from && x.ts < to && (parts == nil || slices.Contains(parts, x.part)) {
			lats = append(lats, x.latency)
		}
	}
	o.mu.Unlock()
	if len(lats) == 0 {
		return LatencyQuantiles{}
	}
	slices.Sort(lats)
	return LatencyQuantiles{Samples: len(lats), P50: ms(quantile(lats, 0.50)), P99: ms(quantile(lats, 0.99)), Max: ms(lats[len(lats)-1])}
}

// failover runs one failover of a store of orders orders with standbys
// standby replicas; flagErr is standbyFlagError's answer for the binary.
func (h *harness) failover(ctx context.Context, fo FailoverOptions, bin string, orders, standbys int, flagErr string) (FailoverRun, error) {
	run := FailoverRun{StoreOrders: orders, Standbys: standbys, Restored: -1}
	var extra []string
	if standbys > 0 {
		if flagErr != "" {
			run.Unavailable = flagErr
			return run, nil
		}
		extra = []string{"--standby-replicas", strconv.Itoa(standbys)}
	}
	app := h.name(fmt.Sprintf("failover-%d-%d", orders, standbys))
	topics := outputTopics(app, app+".events")
	changelog := processor.ChangelogTopic(app)
	h.deleteAtEnd(topics.Events, topics.Status, topics.Rejections, topics.DLQ, changelog, processor.InstancesTopic(app))
	if err := h.createTopic(ctx, topics.Events, nil); err != nil {
		return run, err
	}
	// A short metadata age: the changelog is new (see newHarness).
	if _, err := h.writeStoreOf(ctx, app, orders, kgo.MetadataMinAge(50*time.Millisecond)); err != nil {
		return run, err
	}
	cfg := h.processorConfig(app, "i0", topics, processor.ExactlyOnce)
	if err := processor.EnsureTopics(ctx, h.adm, cfg); err != nil {
		return run, err
	}
	h.input = &preloaded{topic: topics.Events} // the instances' input (startInstance)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	oc := &failoverOutcomes{first: map[int32]time.Time{}}
	oc.kill.Store(math.MaxInt64)
	consumed, err := h.consume(rctx, topics, oc.seen)
	if err != nil {
		return run, err
	}

	// The victim starts alone and restores every partition; the survivor
	// joins and takes half of them, so that it never held the victim's
	// half: with no standby, their failover is a full restore.
	victimID, survivorID := app+"-victim", app+"-survivor"
	victim, err := h.startInstance(bin, app, victimID, h.o.Threads, "", extra...)
	if err != nil {
		return run, err
	}
	defer victim.close()
	killed := false
	defer func() {
		if !killed {
			_ = victim.stop()
		}
	}()
	if err := h.waitFor(ctx, "the victim to restore every partition", time.Minute+h.o.timeout/4, []*child{victim}, func() bool {
		return victim.restored.Load() >= h.o.partitions
	}); err != nil {
		if why := rejectedFlag(victim, standbys); why != "" {
			run.Unavailable = why
			return run, nil
		}
		return run, err
	}

	in := newLatencyInput(h.enc, maxLatencyPasses*h.enc.len())
	stopLoad := make(chan struct{})
	loadDone := make(chan error, 1)
	var produced atomic.Int64
	go func() { loadDone <- h.produceSteady(rctx, topics.Events, in, fo.Rate, stopLoad, &produced) }()
	loadStopped := false
	stop := func() error {
		if loadStopped {
			return nil
		}
		loadStopped = true
		close(stopLoad)
		return <-loadDone
	}
	defer func() { _ = stop() }()

	addr, err := freeAddr()
	if err != nil {
		return run, err
	}
	survivor, err := h.startInstance(bin, app, survivorID, h.o.Threads, "", append(extra, "--http-addr", addr)...)
	if err != nil {
		return run, err
	}
	defer survivor.close()
	defer func() { _ = survivor.stop() }()
	both := []*child{victim, survivor}
	var owners map[string][]int32
	if err := h.waitFor(ctx, "the group to give each instance its half, restored", time.Minute+h.o.timeout/4, both, func() bool {
		var ok bool
		owners, ok = h.groupOwners(ctx, app, topics.Events)
		return ok && len(owners[victimID]) > 0 && len(owners[survivorID]) > 0 &&
			int(survivor.restored.Load()) >= len(owners[survivorID])
	}); err != nil {
		return run, err
	}
	h.logf("failover: %s owns %v, %s owns %v; load %.0f/s for %v", victimID, owners[victimID], survivorID, owners[survivorID], fo.Rate, fo.Settle)
	if err := h.waitFor(ctx, "the settle time", fo.Settle+time.Minute, both, func() bool { return true }, fo.Settle); err != nil {
		return run, err
	}
	if owners, ok := h.groupOwners(ctx, app, topics.Events); ok && len(owners[victimID]) > 0 {
		run.Killed = owners[victimID]
	} else {
		return run, fmt.Errorf("the group changed during the settle time: %v", owners)
	}

	base, err := scrapeMetric(ctx, addr, "orderflow_restored_records_total")
	if err != nil {
		h.logf("failover: %v", err)
	}
	ends, err := h.adm.ListEndOffsets(ctx, changelog)
	if err != nil {
		return run, err
	}
	for _, p := range run.Killed {
		if o, ok := ends.Lookup(changelog, p); ok {
			run.ChangelogAtKill += o.Offset
		}
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		return run, fmt.Errorf("SIGKILL: %w", err)
	}
	killed = true
	kill := time.Now()
	oc.kill.Store(kill.UnixMilli())
	<-victim.exited // its log is complete before close
	h.logf("failover: SIGKILLed %s (pid %d) owning %v; changelog records of its partitions: %d", victimID, victim.cmd.Process.Pid, run.Killed, run.ChangelogAtKill)

	var last time.Time
	if err := h.waitFor(ctx, "every partition of the victim to process new input", fo.failoverDeadline(), []*child{survivor}, func() bool {
		rec := oc.recovered()
		for _, p := range run.Killed {
			t, ok := rec[p]
			if !ok {
				return false
			}
			last = maxTime(last, t)
		}
		return true
	}); err != nil {
		return run, fmt.Errorf("%w (recovered: %v)", err, oc.recovered())
	}
	windowEnd := last.Add(fo.After)
	if err := h.waitFor(ctx, "the latency window's end", fo.After+time.Minute, []*child{survivor}, func() bool { return true }, time.Until(windowEnd)); err != nil {
		return run, err
	}
	if err := stop(); err != nil {
		return run, fmt.Errorf("load: %w", err)
	}
	run.Produced = produced.Load()
	if err := h.waitFor(ctx, "every outcome", time.Minute, []*child{survivor}, func() bool {
		select {
		case err := <-consumed:
			h.logf("failover: outcome consumer: %v", err)
			return true
		default:
		}
		return oc.received.Load() >= run.Produced
	}); err != nil {
		return run, err
	}
	run.Outcomes = oc.received.Load()
	if run.Outcomes != run.Produced {
		h.rep.Checks = append(h.rep.Checks, fmt.Sprintf("failover %d orders, %d standby: %d outcomes for %d input records (want one each)",
			orders, standbys, run.Outcomes, run.Produced))
	}

	if after, err := scrapeMetric(ctx, addr, "orderflow_restored_records_total"); err == nil && base >= 0 {
		run.Restored = int64(after - base)
	} else if err != nil {
		h.logf("failover: %v", err)
	}
	rec := oc.recovered()
	var times []float64
	for _, p := range run.Killed {
		pf := PartitionFailover{Partition: p, Recovered: rec[p].Sub(kill).Seconds()}
		for _, l := range survivor.logEvents() {
			if l.Time.Before(kill) {
				continue
			}
			switch {
			case l.Msg == "partitions assigned" && slices.Contains(l.Partitions, p) && pf.Assigned == 0:
				pf.Assigned = l.Time.Sub(kill).Seconds()
			case l.Msg == "partition restored" && l.Partition == p:
				pf.Restored, pf.Records, pf.Restore = l.Time.Sub(kill).Seconds(), l.Records, l.took().Seconds()
			}
		}
		run.RestoredLog += pf.Records
		run.Partitions = append(run.Partitions, pf)
		times = append(times, pf.Recovered)
	}
	slices.Sort(times)
	run.FailoverMax, run.FailoverMedian = times[len(times)-1], lowerMiddle(times)
	killMs := kill.UnixMilli()
	run.Latency = oc.quantiles(killMs, windowEnd.UnixMilli(), nil)
	run.LatencyKilled = oc.quantiles(killMs, windowEnd.UnixMilli(), run.Killed)
	// Not the last second: the killed instance's last batch, produced
	// then, waits for the failover.
	run.LatencyBefore = oc.quantiles(killMs-11_000, killMs-1_000, nil)
	run.Load = machine.LoadAvg()
	return run, nil
}

// rejectedFlag is why a child that exited before it was ready did not
// take the standby flag (it exited with 2, a configuration error), or ""
// if it did not exit so or ran without standbys.
func rejectedFlag(c *child, standbys int) string {
	select {
	case <-c.exited:
	default:
		return ""
	}
	var ee *exec.ExitError
	if standbys == 0 || !errors.As(c.waitErr, &ee) || ee.ExitCode() != 2 {
		return ""
	}
	return fmt.Sprintf("orderflow run --standby-replicas %d exited with status 2 (a configuration error; see %s)", standbys, c.log.Name())
}

// waitFor polls done every 50 ms until it is true and wait[0], if given,
// has passed, failing when ctx ends, a child exits or timeout passes; what
// names the wait in errors.
func (h *harness) waitFor(ctx context.Context, what string, timeout time.Duration, children []*child, done func() bool, wait ...time.Duration) error {
	start := time.Now()
	minWait := time.Duration(0)
	if len(wait) > 0 {
		minWait = wait[0]
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
		for _, c := range children {
			select {
			case <-c.exited:
				return fmt.Errorf("waiting for %s: orderflow run exited (%v); see %s", what, c.waitErr, c.log.Name())
			default:
			}
		}
		elapsed := time.Since(start)
		if elapsed >= minWait && done() {
			return nil
		}
		if elapsed > timeout {
			return fmt.Errorf("waiting for %s: not after %v", what, timeout)
		}
	}
}

// produceSteady produces in's records to topic at rate, each stamped with
// its produce time, counting them in produced, until stop is closed; it
// fails if the input runs out first.
func (h *harness) produceSteady(ctx context.Context, topic string, in *latencyInput, rate float64, stop <-chan struct{}, produced *atomic.Int64) error {
	lp, err := h.newLoadProducer(topic, kgo.MetadataMinAge(50*time.Millisecond)) // the topic is new
	if err != nil {
		return err
	}
	defer lp.cl.Close()
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for sent := 0; ; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return lp.flush(ctx)
		case <-tick.C:
		}
		now := time.Now()
		due := int(rate * now.Sub(start).Seconds())
		if due > in.n {
			return fmt.Errorf("the load's input (%d records) ran out", in.n)
		}
		in.produce(ctx, lp.cl, sent, due, now, false, lp.produced)
		produced.Store(int64(due))
		sent = due
	}
}

// groupOwners returns, when group is stable with every partition of topic
// owned, the partitions each instance owns (by the instance id in its
// members' client ids: <app>-<instance>/thread-<i>).
func (h *harness) groupOwners(ctx context.Context, group, topic string) (map[string][]int32, bool) {
	gs, err := h.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, false
	}
	g, ok := gs[group]
	if !ok || g.Err != nil || g.State != "Stable" {
		return nil, false
	}
	owners := map[string][]int32{}
	owned := 0
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil, false
		}
		inst, _, _ := strings.Cut(strings.TrimPrefix(m.ClientID, group+"-"), "/")
		for _, t := range a.Topics {
			if t.Topic == topic {
				owners[inst] = append(owners[inst], t.Partitions...)
				owned += len(t.Partitions)
			}
		}
	}
	for _, ps := range owners {
		slices.Sort(ps)
	}
	return owners, owned == int(h.o.partitions)
}

// freeAddr is a free 127.0.0.1 port for an instance's HTTP API, whose
// /metrics the harness reads.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrapeMetric reads the value of an unlabelled metric from the /metrics
// of the HTTP API at addr (-1 with an error if it cannot).
func scrapeMetric(ctx context.Context, addr, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return -1, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, fmt.Errorf("reading %s: %w", name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return -1, fmt.Errorf("no %s in http://%s/metrics", name, addr)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
