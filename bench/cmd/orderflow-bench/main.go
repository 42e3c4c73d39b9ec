// Command orderflow-bench runs the benchmark harness (package bench) against
// a real Kafka broker, prints the results table and writes
// bench/results/<date>-<host>.md and .json. `make bench` runs it with a
// broker of its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/bench"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "orderflow-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		o       bench.Options
		brokers = flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "seed brokers HOST:PORT[,...] (default $KAFKA_BROKERS)")
		out     = flag.String("out", "", "directory of the result files (default <module root>/bench/results; tiny: <work dir>; a partial -only run writes them only if -out is given)")
		scaling = flag.String("scaling", "1,2,4", "instance counts of the scaling measurement")
		compr   = flag.String("compression", "", "producer compression of orderflow and the ceiling, an experiment: none, snappy, lz4 or zstd (default: orderflow's own)")
		only    = flag.String("only", "", "run only these measurements (comma-separated: warmup,ceiling,eos,alos,scaling,latency,restore,rss); the report is incomplete")
	)
	flag.BoolVar(&o.Tiny, "tiny", false, "tiny mode: every measurement on a small workload, in seconds (CI)")
	flag.IntVar(&o.Orders, "orders", 0, "orders in the workload (default 200000; tiny 1000)")
	flag.IntVar(&o.Events, "events", 0, "cap on the workload's events (default 0: every lifecycle in full, about 4 events per order)")
	flag.Func("partitions", "partitions of every topic (default 12)", func(s string) error {
		_, err := fmt.Sscan(s, &o.Partitions)
		return err
	})
	flag.Uint64Var(&o.Seed, "seed", 0, "workload seed (default 1)")
	flag.DurationVar(&o.CommitInterval, "commit-interval", 0, "commit interval of orderflow and the ceiling (default 100ms)")
	flag.IntVar(&o.MaxBatchRecords, "max-batch-records", 0, "records per batch at most (default 10000)")
	flag.IntVar(&o.Rounds, "rounds", 0, "rounds of the throughput measurements (ceilings, exactly_once, at_least_once, interleaved); the report gives the best round, and the median (default 5; tiny 1)")
	flag.IntVar(&o.Threads, "threads", 0, "threads of each orderflow instance, as orderflow run --threads (default: the number of CPUs)")
	flag.DurationVar(&o.LatencyDuration, "latency-duration", 0, "how long the latency measurement produces (default 40s; tiny 3s)")
	flag.Float64Var(&o.LatencyRate, "latency-rate", 0, "produce rate of the latency measurement in records/s, an experiment (default: half the exactly_once rate)")
	flag.DurationVar(&o.LatencyWarmup, "latency-warmup", 0, "leading part of the latency run left out of its percentiles (default 10s; tiny 500ms)")
	flag.IntVar(&o.WarmupPasses, "warmup", 0, "passes of the broker warm-up at most, until its JIT compiler settles and the page cache fills the memory (default 10; tiny 1; -1: none)")
	flag.IntVar(&o.StoreOrders, "store-orders", 0, "orders in the restored store (default 1000000; tiny 5000)")
	flag.StringVar(&o.WorkDir, "work", "", "scratch directory (default <module root>/bench/.work)")
	flag.StringVar(&o.OrderflowBin, "orderflow-bin", "", "built orderflow binary for the RSS measurement (default: go build ./cmd/orderflow)")
	flag.StringVar(&o.TopicPrefix, "prefix", "", "prefix of every topic and group (default bench-<time>)")
	flag.StringVar(&o.Profile, "profile", "", "write CPU and allocation profiles of the last round of exactly_once and at_least_once (in alos/) and the plain ceiling (in ceiling_plain/), and orderflow latency measurements into this directory (a throughput round's CPU profile covers its measured window only)")
	flag.DurationVar(&o.Timeout, "timeout", 0, "bound on each measurement (default 10m; tiny 2m)")
	flag.Parse()

	o.Brokers = splitList(*brokers)
	if len(o.Brokers) == 0 {
		return fmt.Errorf("no brokers: give -brokers or KAFKA_BROKERS (make bench starts a broker)")
	}
	for _, s := range splitList(*scaling) {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			return fmt.Errorf("-scaling %q: want positive instance counts", *scaling)
		}
		o.Scaling = append(o.Scaling, n)
	}
	o.Only = splitList(*only)
	if *compr != "" {
		codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "snappy": kgo.SnappyCompression(),
			"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
		c, ok := codecs[*compr]
		if !ok {
			return fmt.Errorf("-compression %q: want none, snappy, lz4 or zstd", *compr)
		}
		o.ClientOpts = append(o.ClientOpts, kgo.ProducerBatchCompression(c))
	}
	outGiven := false // a partial run writes its files only into an -out given
	flag.Visit(func(f *flag.Flag) { outGiven = outGiven || f.Name == "out" })
	root := moduleRoot()
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(root, "bench", ".work")
	}
	if *out == "" {
		*out = filepath.Join(root, "bench", "results")
		if o.Tiny {
			*out = o.WorkDir
		}
	}
	o.KafkaVersion = bench.KafkaVersionFromPom(root)
	o.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Println()
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	fmt.Println()
	if err := rep.WriteFigures(os.Stdout); err != nil {
		return err
	}
	if len(o.Only) > 0 && !outGiven {
		fmt.Printf("\npartial run (-only %s): no result files written (give -out to write them); took %v\n", *only, time.Since(start).Round(time.Second))
		return nil
	}
	files, err := rep.WriteFiles(*out)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s (took %v)\n", strings.Join(files, ", "), time.Since(start).Round(time.Second))
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// moduleRoot is the nearest directory at or above the working directory
// holding go.mod ("." if none).
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return "."
		}
	}
}
