package bench

import (
	"errors"
	"io"
	"runtime"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures a harness run. Zero fields take the defaults in
// brackets (Tiny changes some of them, in braces).
type Options struct {
	// Brokers are the seed brokers of the real Kafka cluster. Required.
	Brokers []string
	// Tiny runs every measurement on a small workload in seconds (CI).
	Tiny bool
	// Orders is the workload's order count [200,000] {1,000}.
	Orders int
	// Events caps the workload's events; 0 = every lifecycle in full
	// (about 4 events per order) [0].
	Events int
	// Partitions of the input and every output topic [12].
	Partitions int32
	// Seed of the workload [1].
	Seed uint64
	// CommitInterval and MaxBatchRecords of orderflow and the ceiling
	// [processor defaults: 100 ms, 10,000].
	CommitInterval  time.Duration
	MaxBatchRecords int
	// Threads of each orderflow instance (processor.Config.Threads): one
	// per core, so the instance uses the machine [runtime.NumCPU()].
	Threads int
	// Rounds is how many times the throughput measurements (the ceilings,
	// exactly_once, at_least_once) run, interleaved; the report gives each
	// one's best round, and its median [5] {1}.
	Rounds int
	// Scaling lists the instance counts of the scaling measurement [1,2,4].
	// The 1-instance figure is the exactly_once measurement.
	Scaling []int
	// LatencyDuration is how long the latency measurement produces at its
	// fixed rate [40s] {3s}; LatencyWarmup the leading part of it left out
	// of the percentiles [10s] {500ms}. The first seconds of a run are the
	// start-up of new topics, transactions and clients, and the broker's
	// JIT compiling what the run makes it do: with a 2 s warm-up the
	// transactional ceiling's p99 was 2.1 s in one run and 263 ms over the
	// same run after 10 s (the report gives the whole run's p99 too).
	LatencyDuration, LatencyWarmup time.Duration
	// LatencyRate, if set, is the latency measurement's produce rate in
	// records/s, an experiment: comparing two builds at one load. Unset,
	// the rate is half the exactly_once rate (README.md, "Benchmarks").
	LatencyRate float64
	// StoreOrders is the order count of the store restored and held by the
	// RSS child [1,000,000] {5,000}.
	StoreOrders int
	// WorkDir holds state dirs, logs and the built binary [bench/.work].
	WorkDir string
	// OrderflowBin is a built orderflow binary for the RSS measurement;
	// empty builds ./cmd/orderflow into WorkDir.
	OrderflowBin string
	// KafkaVersion names the broker's version in the report [read from
	// deploy/kafka/pom.xml].
	KafkaVersion string
	// TopicPrefix prefixes every topic, group and transactional id
	// [bench-<unix time>].
	TopicPrefix string
	// Timeout bounds each measurement [10m] {2m}.
	Timeout time.Duration
	// Log receives progress lines [io.Discard].
	Log io.Writer
	// Profile, if not empty, is a directory where the exactly_once
	// measurement's last round writes cpu.pprof and allocs.pprof (round 1,
	// the first after the warm-up, is often disturbed), the at_least_once
	// measurement the same in alos/, the plain ceiling (to compare with
	// at_least_once) in ceiling_plain/, and orderflow's
	// latency measurement latency-cpu.pprof and latency-allocs.pprof (the
	// whole bench process: orderflow, load generator and outcome consumer).
	// A throughput measurement's cpu.pprof covers only the window its rate
	// is taken over (not the start-up, nor the shutdown, where the store's
	// compactions run); allocs.pprof, diffed with allocs-before.pprof, the
	// whole measurement.
	Profile string
	// ClientOpts are extra franz-go options given to orderflow (as
	// Config.KafkaOpts) and the ceiling alike, e.g. a producer compression,
	// for experiments [none].
	ClientOpts []kgo.Opt
	// WarmupPasses bounds the broker warm-up's passes (see warmup) [10] {1};
	// negative: no warm-up.
	WarmupPasses int
	// Only, if not empty, runs only the named steps (warmup, ceiling, eos,
	// alos, scaling, latency, restore, rss), for profiling; the report is
	// then incomplete.
	Only []string
}

func (o Options) withDefaults() Options {
	if o.Orders == 0 {
		o.Orders = 200_000
		if o.Tiny {
			o.Orders = 1_000
		}
	}
	if o.Partitions == 0 {
		o.Partitions = 12
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = 100 * time.Millisecond
	}
	if o.MaxBatchRecords == 0 {
		o.MaxBatchRecords = 10_000
	}
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Rounds == 0 {
		o.Rounds = 5
		if o.Tiny {
			o.Rounds = 1
		}
	}
	if len(o.Scaling) == 0 {
		o.Scaling = []int{1, 2, 4}
	}
	if o.LatencyDuration == 0 {
		o.LatencyDuration = 40 * time.Second
		if o.Tiny {
			o.LatencyDuration = 3 * time.Second
		}
	}
	if o.LatencyWarmup == 0 {
		o.LatencyWarmup = 10 * time.Second
		if o.Tiny {
			o.LatencyWarmup = 500 * time.Millisecond
		}
	}
	if o.StoreOrders == 0 {
		o.StoreOrders = 1_000_000
		if o.Tiny {
			o.StoreOrders = 5_000
		}
	}
	if o.WarmupPasses == 0 {
		o.WarmupPasses = 10
		if o.Tiny {
			o.WarmupPasses = 1
		}
	}
	if o.WorkDir == "" {
		o.WorkDir = "bench/.work"
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "bench-" + time.Now().Format("20060102-150405")
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
		if o.Tiny {
			o.Timeout = 2 * time.Minute
		}
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
	if o.Orders < 1 || o.StoreOrders < 1 || o.Partitions < 1 || o.Rounds < 1 {
		errs = append(errs, errors.New("bench: orders, store orders, partitions and rounds must be positive"))
	}
	if o.LatencyRate < 0 {
		errs = append(errs, errors.New("bench: the latency rate must not be negative"))
	}
	if o.LatencyWarmup >= o.LatencyDuration {
		errs = append(errs, errors.New("bench: the latency warm-up must be shorter than the latency duration"))
	}
	return errors.Join(errs...)
}

func (o Options) runs(name string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, n := range o.Only {
		if n == name {
			return true
		}
	}
	return false
}
