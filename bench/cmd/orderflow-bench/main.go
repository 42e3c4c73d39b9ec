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
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/orderflow/orderflow/bench"
	"github.com/orderflow/orderflow/bench/internal/cli"
)

func main() { cli.Main("orderflow-bench", run) }

// parseFlags returns the harness's options and the directory of the
// result files ("" for a partial run that writes none).
func parseFlags() (bench.Options, string, error) {
	var (
		o       bench.Options
		brokers = cli.BrokersFlag()
		out     = flag.String("out", "", "directory of the result files (default <module root>/bench/results; tiny: <module root>/bench/.work; a partial -only run writes them only if -out is given)")
		curve   = flag.String("curve", "", "run only these settings of the latency curve (comma-separated: eos-10ms,eos-20ms,eos-50ms,eos-100ms,alos,eos-low-latency,alos-low-latency); the report is incomplete")
		only    = flag.String("only", "", "run only these measurements (comma-separated: warmup,ceiling,eos,alos,scaling,latency,restore,rss); the report is incomplete")
	)
	flag.BoolVar(&o.Tiny, "tiny", false, "tiny mode: every measurement on a small workload, in seconds (CI)")
	flag.IntVar(&o.Rounds, "rounds", 0, "rounds of the throughput measurements (ceilings, exactly_once, at_least_once, interleaved); the verdict takes the median of each round's ratio to its ceiling's (default 7; tiny 1)")
	flag.IntVar(&o.Orders, "orders", 0, "orders in the workload (default 200000; tiny 1000)")
	flag.IntVar(&o.Threads, "threads", 0, "threads of each orderflow instance, as orderflow run --threads (default: the number of CPUs)")
	flag.DurationVar(&o.LatencyDuration, "latency-duration", 0, "how long each run of the latency curve produces (default 8s; tiny 1.5s)")
	flag.DurationVar(&o.LatencyWarmup, "latency-warmup", 0, "leading part of each latency run left out of its percentiles (default 2s; tiny 500ms)")
	flag.IntVar(&o.WarmupPasses, "warmup", 0, "passes of the broker warm-up at most, until its JIT compiler settles and the page cache fills the memory (default 10; tiny 1; -1: none)")
	flag.StringVar(&o.OrderflowBin, "orderflow-bin", "", "built orderflow binary for the RSS measurement (default: go build ./cmd/orderflow)")
	flag.Parse()

	o.Only, o.Curve = splitList(*only), splitList(*curve)
	var err error
	if o.Brokers, err = cli.Brokers(*brokers, "bench"); err != nil {
		return o, "", err
	}
	root := moduleRoot()
	o.WorkDir = filepath.Join(root, "bench", ".work")
	o.KafkaVersion = bench.KafkaVersionFromPom(root)
	o.Log = os.Stderr
	switch {
	case *out != "":
	case len(o.Only) > 0, len(o.Curve) > 0:
	case o.Tiny:
		*out = o.WorkDir
	default:
		*out = filepath.Join(root, "bench", "results")
	}
	return o, *out, nil
}

// cpuProfile is -cpuprofile: where the whole run's CPU profile goes. The
// throughput and latency runs of orderflow are in this process (the RSS
// run is a child), so -only eos gives a profile of exactly_once's path.
var cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (orderflow runs in this process, except for the RSS run; -only eos profiles exactly_once)")

func run(ctx context.Context) error {
	o, out, err := parseFlags()
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
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
	took := time.Since(start).Round(time.Second)
	if out == "" {
		fmt.Printf("\npartial run (-only %s): no result files written (give -out to write them); took %v\n", strings.Join(o.Only, ","), took)
		return nil
	}
	files, err := rep.WriteFiles(out)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s (took %v)\n", strings.Join(files, ", "), took)
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
