package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/bench/internal/machine"
	"github.com/orderflow/orderflow/internal/kread"
	"github.com/orderflow/orderflow/processor"
	"github.com/prometheus/procfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Capacity is the result of a capacity run (RunCapacity): the per-core
// figures that size a deployment, measured on this machine, and a scaling
// run over 1, 2 and 4 single-threaded instances. Markdown turns it into
// the capacity model's document.
type Capacity struct {
	Date    time.Time `json:"date"`
	Tiny    bool      `json:"tiny"`
	Machine Machine   `json:"machine"`
	// Uptime is `uptime`'s line at the start and at the end: the machine
	// is shared, and its load moves every figure here.
	UptimeBefore string       `json:"uptime_before"`
	UptimeAfter  string       `json:"uptime_after"`
	Workload     WorkloadInfo `json:"workload"`
	// Warmup are the broker warm-up's passes, before any measurement.
	Warmup  []WarmupPass  `json:"warmup"`
	Inputs  CapacityInput `json:"inputs"`
	Scaling []ScalingRun  `json:"scaling"`
	// Pinned says whether the scaling run's instances were pinned to
	// CPUs with taskset.
	Pinned  bool     `json:"pinned"`
	Checks  []string `json:"checks"`
	Seconds float64  `json:"seconds"`
}

// CapacityInput are the measured inputs of the capacity model.
type CapacityInput struct {
	// EOS and ALOS are one single-threaded instance under exactly_once
	// and at_least_once.
	EOS  PerCore `json:"eos"`
	ALOS PerCore `json:"alos"`
	// InputBytesPerEvent is the input topic's log bytes per event;
	// BrokerBytesPerEvent the log bytes one event puts on the broker
	// under exactly_once: its input record, its outputs, its changelog
	// record and the transactions' markers (one replica).
	InputBytesPerEvent  float64 `json:"input_bytes_per_event"`
	BrokerBytesPerEvent float64 `json:"broker_bytes_per_event"`
	// ChangelogBytesPerTransition is the changelog's log bytes per
	// accepted event before compaction; ChangelogBytesPerOrder per order
	// once compacted (one state per order).
	ChangelogBytesPerTransition float64 `json:"changelog_bytes_per_transition"`
	ChangelogBytesPerOrder      float64 `json:"changelog_bytes_per_order"`
	// StoreBytesPerOpenOrder and StoreBytesPerClosedOrder are the local
	// store's bytes on disk per order (Pebble, flushed) holding only open
	// or only closed orders (closed ones carry a retention index entry);
	// StoreBytesPerOrder per order of the restored store, the workload's
	// mix (OpenShare of its orders open).
	StoreBytesPerOpenOrder   float64 `json:"store_bytes_per_open_order"`
	StoreBytesPerClosedOrder float64 `json:"store_bytes_per_closed_order"`
	StoreBytesPerOrder       float64 `json:"store_bytes_per_order"`
	OpenShare                float64 `json:"open_share"`
	StoreOrders              int     `json:"store_orders"`
	// Restore is every changelog partition restored into an empty store
	// (as a crashed instance does): records/s, the cores the bench process
	// used meanwhile and records/s per core used.
	RestoreRate    float64         `json:"restore_records_per_s"`
	RestoreCores   float64         `json:"restore_cores"`
	RestorePerCore float64         `json:"restore_records_per_s_per_core"`
	RestoreCPU     *machine.CPUUse `json:"restore_cpu,omitempty"`
}

// PerCore is one throughput measurement of a single-threaded instance,
// normalised by the CPU it used.
type PerCore struct {
	// Rate is the best round's events/s; Rounds every round's.
	Rate   float64   `json:"events_per_s"`
	Rounds []float64 `json:"rounds"`
	// Cores is the cores the bench process (the instance and the
	// harness's small overhead) used over the best round's window;
	// PerCore = Rate / Cores.
	Cores   float64 `json:"cores"`
	PerCore float64 `json:"events_per_s_per_core"`
	// BrokerUsPerEvent is the broker JVM's CPU per event (0 if unknown);
	// IRQUsPerEvent the machine's irq + softirq time per event.
	BrokerUsPerEvent float64 `json:"broker_us_per_event"`
	IRQUsPerEvent    float64 `json:"irq_us_per_event"`
	// OtherCores is what other processes used meanwhile (the machine is
	// shared); nil if the broker is unknown.
	OtherCores *float64        `json:"other_cores"`
	CPU        *machine.CPUUse `json:"cpu,omitempty"`
}

// ScalingRun is the same input processed by Instances `orderflow run`
// processes of one thread each.
type ScalingRun struct {
	Instances int     `json:"instances"`
	Rate      float64 `json:"events_per_s"`
	Ratio     float64 `json:"ratio"` // to the 1-instance rate
	// Predicted is the model's rate on this machine (see capacityModel's
	// predictScaling), PredictedRatio its ratio to the 1-instance rate.
	Predicted      float64 `json:"predicted_events_per_s"`
	PredictedRatio float64 `json:"predicted_ratio"`
	// ChildCores is the cores the instances used together over the
	// window; Window its seconds.
	ChildCores float64         `json:"child_cores"`
	Window     float64         `json:"window_seconds"`
	CPU        *machine.CPUUse `json:"cpu,omitempty"`
}

// capacityOrders are the orders of a capacity run's workload.
const capacityOrders = 100_000

// capacityInstances are the scaling run's instance counts.
var capacityInstances = []int{1, 2, 4}

// RunCapacity measures the capacity model's inputs and runs the scaling
// run. Every orderflow instance runs one thread, so its figures are one
// core's (normalised by the CPU the instance actually used: the machine
// may be shared). Options are those of Run; Rounds defaults to 3 {1} and
// WarmupPasses to 2 {1}; Threads and Only are ignored.
func RunCapacity(ctx context.Context, o Options) (*Capacity, error) {
	if o.Rounds == 0 && !o.Tiny {
		o.Rounds = 3
	}
	if o.WarmupPasses == 0 && !o.Tiny {
		o.WarmupPasses = 2
	}
	o.Threads, o.Only = 1, nil
	start, up := time.Now(), uptime()
	h, err := newHarness(ctx, o)
	if err != nil {
		return nil, err
	}
	defer h.close()
	if !h.o.Tiny {
		// Half the bench's workload: a single-threaded instance's window
		// still lasts seconds, and the run stays within minutes.
		h.o.orders = capacityOrders
	}
	c := &Capacity{Date: start, Tiny: h.o.Tiny, Machine: h.rep.Machine, UptimeBefore: up}
	steps := []step{
		{"preload", h.preload, true},
		{"warmup", h.warmup, true},
		{"throughput", func(ctx context.Context) error { return h.capacityThroughput(ctx, c) }, true},
		{"store", func(ctx context.Context) error { return h.capacityStore(ctx, c) }, true},
		{"restore", func(ctx context.Context) error { return h.capacityRestore(ctx, c) }, true},
		{"scaling", func(ctx context.Context) error { return h.capacityScaling(ctx, c) }, true},
	}
	if err := h.runSteps(ctx, "capacity", steps); err != nil {
		return c, err
	}
	c.Workload, c.Warmup = h.rep.Workload, h.rep.Warmup
	c.Checks = append(c.Checks, h.rep.Checks...)
	c.UptimeAfter = uptime()
	c.Seconds = time.Since(start).Seconds()
	return c, nil
}

// uptime is `uptime`'s output, or the load average where it cannot run.
func uptime() string {
	out, err := exec.Command("uptime").Output()
	if err != nil {
		l := machine.LoadAvg()
		return fmt.Sprintf("load average: %.2f, %.2f, %.2f", l[0], l[1], l[2])
	}
	return strings.TrimSpace(string(out))
}

// capacityThroughput measures one single-threaded instance under
// exactly_once and at_least_once, interleaved over Rounds rounds, keeping
// each one's best round, and the broker bytes an event writes (from the
// first exactly_once round's topics).
func (h *harness) capacityThroughput(ctx context.Context, c *Capacity) error {
	var eos, alos []throughput
	for round := 1; round <= h.o.Rounds; round++ {
		for _, g := range []processor.Guarantee{processor.ExactlyOnce, processor.AtLeastOnce} {
			name := fmt.Sprintf("cap-eos-%d", round)
			if g == processor.AtLeastOnce {
				name = fmt.Sprintf("cap-alos-%d", round)
			}
			h.settle()
			t, err := h.orderflow(ctx, name, g, 1)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			h.logf("round %d/%d: %s, 1 instance, 1 thread: %s", round, h.o.Rounds, g, t)
			if g == processor.AtLeastOnce {
				alos = append(alos, t)
				continue
			}
			eos = append(eos, t)
			if round == 1 {
				if err := h.brokerBytes(ctx, h.name(name), &c.Inputs); err != nil {
					return err
				}
			}
		}
	}
	c.Inputs.EOS, c.Inputs.ALOS = perCore(eos), perCore(alos)
	return nil
}

// perCore is the best of rounds, normalised by the CPU it used.
func perCore(rounds []throughput) PerCore {
	var p PerCore
	best := rounds[0]
	for _, t := range rounds {
		p.Rounds = append(p.Rounds, t.rate)
		if t.rate > best.rate {
			best = t
		}
	}
	p.Rate, p.CPU = best.rate, best.cpu
	if u := best.cpu; u != nil {
		p.Cores = u.BenchCores
		if u.BenchUsPerRecord > 0 {
			p.PerCore = 1e6 / u.BenchUsPerRecord
		}
		if u.BrokerUsPerRecord != nil {
			p.BrokerUsPerEvent = *u.BrokerUsPerRecord
		}
		if best.rate > 0 {
			p.IRQUsPerEvent = u.IRQCores / best.rate * 1e6
		}
		p.OtherCores = u.OtherCores
	}
	return p
}

// topicBytes is the log bytes of each topic, summed over its partitions
// and replicas.
func (h *harness) topicBytes(ctx context.Context, topics ...string) (map[string]int64, error) {
	var set kadm.TopicsSet
	for _, t := range topics {
		set.Add(t)
	}
	dirs, err := h.adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("describing log dirs: %w", err)
	}
	sizes := map[string]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if _, ok := set[p.Topic]; ok {
				sizes[p.Topic] += p.Size
			}
		})
	})
	return sizes, nil
}

// brokerBytes sets the broker bytes per event from the topics of app, an
// exactly_once run on the preloaded input.
func (h *harness) brokerBytes(ctx context.Context, app string, in *CapacityInput) error {
	topics := outputTopics(app, h.input.topic)
	changelog := processor.ChangelogTopic(app)
	sizes, err := h.topicBytes(ctx, topics.Events, topics.Status, topics.Rejections, topics.DLQ, changelog)
	if err != nil {
		return err
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	n := float64(h.input.records)
	in.InputBytesPerEvent = float64(sizes[topics.Events]) / n
	in.BrokerBytesPerEvent = float64(total) / n
	if t := h.enc.expect.transitions; t > 0 {
		in.ChangelogBytesPerTransition = float64(sizes[changelog]) / float64(t)
	}
	h.logf("broker bytes of %s: %v (%.0f bytes per event)", app, sizes, in.BrokerBytesPerEvent)
	return nil
}

// capacityStore measures the local store's bytes per open and per closed
// order: a store holding StoreOrders/5 open orders only, another as many
// closed ones. The closed ones are the workload's final states; the open
// ones the last open state of each order in the changelog of the first
// exactly_once run (each order's states before it closed); both repeated
// under new ids.
func (h *harness) capacityStore(ctx context.Context, c *Capacity) error {
	var open, closed arena
	for i := range h.enc.finals.len() {
		if _, isClosed := h.closedAt(h.enc.finals.at(i)); isClosed {
			closed.add(h.enc.finalIDs.at(i))
			closed.add(h.enc.finals.at(i))
		}
	}
	last := map[string][]byte{}
	changelog := processor.ChangelogTopic(h.name("cap-eos-1"))
	err := kread.ReadCommitted(ctx, h.o.Brokers, nil, changelog, func(r *kgo.Record) error {
		if _, isClosed := h.closedAt(r.Value); r.Value != nil && !isClosed {
			last[string(r.Key)] = r.Value
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", changelog, err)
	}
	for _, id := range slices.Sorted(maps.Keys(last)) {
		open.add([]byte(id))
		open.add(last[id])
	}
	if open.len() == 0 || closed.len() == 0 {
		return fmt.Errorf("%d open and %d closed order states: need both", open.len()/2, closed.len()/2)
	}
	c.Inputs.OpenShare = float64(h.enc.finals.len()-closed.len()/2) / float64(h.enc.finals.len())
	n := max(h.o.storeOrders/5, 1000)
	if c.Inputs.StoreBytesPerOpenOrder, err = h.storeBytesPerOrder(ctx, "open", &open, n); err != nil {
		return err
	}
	c.Inputs.StoreBytesPerClosedOrder, err = h.storeBytesPerOrder(ctx, "closed", &closed, n)
	return err
}

// storeBytesPerOrder writes n orders, the states (id, value pairs in
// states) repeated under new ids, into an empty store spread over the
// partitions, closes it (which flushes it) and returns its bytes on disk
// per order.
func (h *harness) storeBytesPerOrder(ctx context.Context, name string, states *arena, n int) (float64, error) {
	store, dir, done, err := h.emptyStore("store-" + name)
	if err != nil {
		return 0, err
	}
	defer done()
	var key []byte
	const perBatch = 10_000
	for i := 0; i < n; i += perBatch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b := store.NewWriteBatch()
		for j := i; j < min(i+perBatch, n); j++ {
			k, m := j%(states.len()/2), states.len()/2
			key = fmt.Appendf(key[:0], "c%d-%s", j/m, states.at(2*k))
			v := states.at(2*k + 1)
			at, closed := h.closedAt(v)
			if err := b.PutClosed(int32(j)%h.o.partitions, key, v, at, closed); err != nil {
				b.Discard()
				return 0, err
			}
		}
		if err := b.Commit(); err != nil {
			return 0, err
		}
	}
	if err := store.Close(); err != nil {
		return 0, err
	}
	size, err := dirBytes(dir)
	if err != nil {
		return 0, err
	}
	per := float64(size) / float64(n)
	h.logf("store of %d %s orders: %d bytes on disk, %.1f per order", n, name, size, per)
	return per, nil
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	return total, err
}

// capacityRestore writes the big changelog (StoreOrders orders, one state
// each), takes its bytes per order, and restores every partition into an
// empty store as a crashed instance does, with the CPU it used.
func (h *harness) capacityRestore(ctx context.Context, c *Capacity) error {
	// Uncompressed, as orderflow writes its changelog, so that its size is
	// the size of orderflow's.
	changelog, err := h.writeStore(ctx, kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	h.deleteAtEnd(changelog)
	sizes, err := h.topicBytes(ctx, changelog)
	if err != nil {
		return err
	}
	in := &c.Inputs
	in.StoreOrders = h.o.storeOrders
	in.ChangelogBytesPerOrder = float64(sizes[changelog]) / float64(h.o.storeOrders)
	store, dir, done, err := h.emptyStore("restore")
	if err != nil {
		return err
	}
	defer done()
	h.settle()
	a, start := h.cpu.Snapshot(), time.Now()
	total, err := h.restoreAll(ctx, store, changelog)
	took, b := time.Since(start), h.cpu.Snapshot()
	if err != nil {
		return err
	}
	if total != int64(h.o.storeOrders) {
		return fmt.Errorf("restored %d records, want %d", total, h.o.storeOrders)
	}
	in.RestoreRate = float64(total) / took.Seconds()
	if u := machine.Use(a, b, total); u != nil {
		in.RestoreCPU, in.RestoreCores = u, u.BenchCores
		if u.BenchUsPerRecord > 0 {
			in.RestorePerCore = 1e6 / u.BenchUsPerRecord
		}
	}
	if err := store.Close(); err != nil {
		return err
	}
	size, err := dirBytes(dir)
	if err != nil {
		return err
	}
	in.StoreBytesPerOrder = float64(size) / float64(total)
	h.logf("restore: %d records in %v (%.0f/s, %.2f cores); changelog %.1f bytes per order, store %.1f", total,
		took.Round(time.Millisecond), in.RestoreRate, in.RestoreCores, in.ChangelogBytesPerOrder, in.StoreBytesPerOrder)
	return nil
}

// capacityScaling processes the preloaded input with 1, 2 and 4
// `orderflow run` processes of one thread each (exactly_once), each pinned
// to one CPU with taskset where it can (instance i on CPU i mod cores), and
// sets the model's prediction beside each.
func (h *harness) capacityScaling(ctx context.Context, c *Capacity) error {
	bin, err := h.orderflowBinary(ctx)
	if err != nil {
		return err
	}
	_, err = exec.LookPath("taskset")
	c.Pinned = err == nil && runtime.GOOS == "linux"
	for _, n := range capacityInstances {
		h.settle()
		r, err := h.scalingRun(ctx, bin, n, c.Pinned)
		if err != nil {
			return fmt.Errorf("%d instance(s): %w", n, err)
		}
		h.logf("scaling: %d instance(s): %.0f events/s, %.2f cores; %v", n, r.Rate, r.ChildCores, r.CPU)
		c.Scaling = append(c.Scaling, r)
	}
	predictScaling(c)
	return nil
}

// scalingRun runs n single-threaded instances on the preloaded input under
// a fresh app id until their group has committed its end. The rate is
// taken from the moment the group is stable with every instance owning
// partitions (or from the start, if the input is done before) to the end.
func (h *harness) scalingRun(ctx context.Context, bin string, n int, pinned bool) (ScalingRun, error) {
	r := ScalingRun{Instances: n}
	app := h.name(fmt.Sprintf("cap-scale-%d", n))
	topics := outputTopics(app, h.input.topic)
	cfg := h.processorConfig(app, "i0", topics, processor.ExactlyOnce)
	if err := processor.EnsureTopics(ctx, h.adm, cfg); err != nil {
		return r, err
	}
	h.deleteAtEnd(topics.Status, topics.Rejections, topics.DLQ, processor.ChangelogTopic(app))
	cores := runtime.NumCPU()
	children := make([]*child, 0, n)
	defer func() {
		for _, ch := range children {
			if err := ch.stop(); err != nil && !errors.As(err, new(*exec.ExitError)) {
				h.logf("scaling: stopping %s: %v", ch.stateDir, err)
			}
			ch.close()
		}
	}()
	start, s0 := time.Now(), h.cpu.Snapshot()
	for i := range n {
		cpus := ""
		if pinned {
			cpus = strconv.Itoa(i % cores)
		}
		ch, err := h.startInstance(bin, app, fmt.Sprintf("%s-i%d", app, i), 1, cpus)
		if err != nil {
			return r, err
		}
		children = append(children, ch)
	}
	var (
		t0     time.Time
		c0     int64
		sT0    machine.Snapshot
		child0 float64
	)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
		for _, ch := range children {
			select {
			case <-ch.exited:
				return r, fmt.Errorf("orderflow run exited early (%v); see %s", ch.waitErr, ch.log.Name())
			default:
			}
		}
		committed, err := h.committed(ctx, app)
		if err != nil {
			continue
		}
		if t0.IsZero() && h.groupSpread(ctx, app, n) {
			t0, c0, sT0, child0 = time.Now(), committed, h.cpu.Snapshot(), childCPU(children)
		}
		if committed < h.input.records {
			continue
		}
		now, sEnd, childEnd := time.Now(), h.cpu.Snapshot(), childCPU(children)
		if t0.IsZero() || committed-c0 < h.input.records/4 {
			// The input was mostly done before the group settled (tiny
			// mode): take the whole run.
			t0, c0, sT0, child0 = start, 0, s0, 0
		}
		w := now.Sub(t0).Seconds()
		r.Rate, r.Window = float64(committed-c0)/w, w
		r.ChildCores = (childEnd - child0) / w
		r.CPU = machine.Use(sT0, sEnd, committed-c0)
		return r, nil
	}
}

// committed is the sum of the group's committed offsets on the input.
func (h *harness) committed(ctx context.Context, group string) (int64, error) {
	offs, err := h.adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, o := range offs[h.input.topic] {
		if o.Err == nil && o.At > 0 {
			sum += o.At
		}
	}
	return sum, nil
}

// groupSpread reports whether the group is stable with n members, each
// owning input partitions, and every partition owned.
func (h *harness) groupSpread(ctx context.Context, group string, n int) bool {
	gs, err := h.adm.DescribeGroups(ctx, group)
	if err != nil {
		return false
	}
	g, ok := gs[group]
	if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != n {
		return false
	}
	owned := 0
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return false
		}
		mine := 0
		for _, t := range a.Topics {
			if t.Topic == h.input.topic {
				mine += len(t.Partitions)
			}
		}
		if mine == 0 && n <= int(h.o.partitions) {
			return false
		}
		owned += mine
	}
	return owned == int(h.o.partitions)
}

// childCPU is the CPU seconds (user + system) the children have used so
// far (0 for one that cannot be read).
func childCPU(children []*child) float64 {
	var secs float64
	for _, ch := range children {
		p, err := procfs.NewProc(ch.cmd.Process.Pid)
		if err != nil {
			continue
		}
		if st, err := p.Stat(); err == nil {
			secs += st.CPUTime()
		}
	}
	return secs
}
