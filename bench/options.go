package bench

import (
	"errors"
	"io"
	"runtime"
	"slices"
	"time"
)

// Options configures a harness run. Zero fields take the defaults in
// brackets (Tiny changes some of them, in braces).
type Options struct {
	// Brokers are the seed brokers of the real Kafka cluster. Required.
	Brokers []string
	// Tiny runs every measurement on a small workload in seconds (CI).
	Tiny bool
	// Threads of each orderflow instance (processor.Config.Threads): one
	// per core, so the instance uses the machine [runtime.NumCPU()].
	Threads int
	// Rounds is how many times the throughput measurements (the ceilings,
	// exactly_once, at_least_once) run, interleaved; the report gives each
	// one's median round, and its best [7] {1}.
	Rounds int
	// LatencyDuration is how long each run of the latency curve produces
	// [8s] {1.5s}; LatencyWarmup the leading part of it left out of the
	// percentiles [2s] {500ms}: the start-up of new topics, transactions
	// and clients, and the broker's JIT compiling what the run makes it
	// do (the report gives the whole run's p99 too). The curve has about
	// 40 runs (settings x loads x orderflow and the ceiling).
	LatencyDuration, LatencyWarmup time.Duration
	// WarmupPasses bounds the broker warm-up's passes (see warmup) [10] {1};
	// negative: no warm-up.
	WarmupPasses int
	// WorkDir holds state dirs, logs and the built binary [bench/.work].
	WorkDir string
	// OrderflowBin is a built orderflow binary for the RSS measurement;
	// empty builds ./cmd/orderflow into WorkDir.
	OrderflowBin string
	// KafkaVersion names the broker's version in the report.
	KafkaVersion string
	// TopicPrefix prefixes every topic, group and transactional id
	// [bench-<time>].
	TopicPrefix string
	// Log receives progress lines [io.Discard].
	Log io.Writer
	// Only, if not empty, runs only the named steps (warmup, ceiling, eos,
	// alos, scaling, latency, restore, rss), to compare two builds on a
	// few figures; the report is then incomplete.
	Only []string
	// Orders is the workload's size, in orders [200,000] {1,000}: smaller
	// for a quick look at the latency curve (the throughput rounds then
	// read the workload many times over).
	Orders int
	// Curve, if not empty, runs only these settings of the latency curve
	// (curveSettings' names); the report is then incomplete.
	Curve []string

	// The workload and orderflow's settings: the same in every run but
	// for Tiny's smaller sizes.
	seed            uint64
	orders          int           // orders in the workload [200,000] {1,000}
	storeOrders     int           // orders in the restored store [1,000,000] {5,000}
	partitions      int32         // of the input and every output topic
	commitInterval  time.Duration // of orderflow and the ceiling: processor's default
	maxBatchRecords int           // likewise
	timeout         time.Duration // bound on each step [10m] {2m}
}

func (o Options) withDefaults() Options {
	big := func(full, tiny int) int {
		if o.Tiny {
			return tiny
		}
		return full
	}
	dur := func(v *time.Duration, full, tiny time.Duration) {
		if *v == 0 {
			*v = time.Duration(big(int(full), int(tiny)))
		}
	}
	o.seed, o.partitions = 1, 12
	o.orders, o.storeOrders = big(200_000, 1_000), big(1_000_000, 5_000)
	if o.Orders > 0 {
		o.orders = o.Orders
	}
	o.commitInterval, o.maxBatchRecords = 100*time.Millisecond, 10_000
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Rounds == 0 {
		o.Rounds = big(7, 1)
	}
	if o.WarmupPasses == 0 {
		o.WarmupPasses = big(10, 1)
	}
	dur(&o.LatencyDuration, 8*time.Second, 1500*time.Millisecond)
	dur(&o.LatencyWarmup, 2*time.Second, 500*time.Millisecond)
	dur(&o.timeout, 10*time.Minute, 2*time.Minute)
	if o.WorkDir == "" {
		o.WorkDir = "bench/.work"
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "bench-" + time.Now().Format("20060102-150405")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("bench: no brokers"))
	}
	if o.Rounds < 1 || o.Threads < 1 {
		errs = append(errs, errors.New("bench: rounds and threads must be positive"))
	}
	if o.LatencyWarmup >= o.LatencyDuration {
		errs = append(errs, errors.New("bench: the latency warm-up must be shorter than the latency duration"))
	}
	return errors.Join(errs...)
}

func (o Options) runs(name string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, name) }
