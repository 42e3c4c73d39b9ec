// Command orderflow-failover runs the failover benchmark (bench.RunFailover)
// against a real Kafka broker: two `orderflow run` instances under a steady
// load, one SIGKILLed, for each store size and standby count; it prints the
// runs side by side and writes bench/results/<date>-<host>-failover.md and
// .json. `make bench-failover` runs it with a broker of its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/bench"
	"github.com/orderflow/orderflow/bench/internal/cli"
)

func main() { cli.Main("orderflow-failover", run) }

func run(ctx context.Context) error {
	var (
		fo       bench.FailoverOptions
		brokers  = cli.BrokersFlag()
		out      = flag.String("out", "", "directory of the result files (default bench/results; tiny: bench/.work)")
		stores   = flag.String("stores", "", "store sizes in orders, comma-separated (default 100000,1000000; tiny 2000)")
		standbys = flag.String("standbys", "", "--standby-replicas values, comma-separated (default 0,1); a binary without the flag reports those above 0 as not available")
	)
	flag.BoolVar(&fo.Tiny, "tiny", false, "tiny mode: a small store and load, in seconds (CI); its figures mean nothing")
	flag.Float64Var(&fo.Rate, "rate", 0, "steady input load, records/s over all partitions (default 3000; tiny 300)")
	flag.DurationVar(&fo.Settle, "settle", 0, "load on both instances before the kill (default 15s; tiny 2s)")
	flag.DurationVar(&fo.After, "after", 0, "latency window after the last partition recovered (default 10s; tiny 1s)")
	flag.IntVar(&fo.Threads, "threads", 0, "threads of each orderflow instance, as orderflow run --threads (default 1)")
	flag.IntVar(&fo.Orders, "orders", 0, "orders in the workload the load replays (default 20000; tiny 500)")
	flag.StringVar(&fo.Note, "note", "", "a line for the report, as is: what the figures do not say (other work on the machine, the binary's branch)")
	flag.StringVar(&fo.OrderflowBin, "orderflow-bin", "", "built orderflow binary (default: go build ./cmd/orderflow)")
	flag.Parse()
	var err error
	if fo.Stores, err = ints(*stores); err != nil {
		return fmt.Errorf("-stores: %w", err)
	}
	if fo.Standbys, err = ints(*standbys); err != nil {
		return fmt.Errorf("-standbys: %w", err)
	}
	var berr error
	if fo.Brokers, berr = cli.Brokers(*brokers, "bench-failover"); berr != nil {
		return berr
	}
	// Paths are relative to the module root, where make runs this.
	fo.WorkDir = filepath.Join("bench", ".work")
	fo.KafkaVersion = bench.KafkaVersionFromPom(".")
	fo.Log = os.Stderr
	if *out == "" {
		*out = filepath.Join("bench", "results")
		if fo.Tiny {
			*out = fo.WorkDir
		}
	}
	start := time.Now()
	rep, err := bench.RunFailover(ctx, fo)
	if rep != nil && len(rep.Runs) > 0 {
		// A partial report (a later run failed) is still worth the files.
		files, werr := rep.WriteFiles(*out)
		if werr != nil {
			return werr
		}
		fmt.Println()
		fmt.Print(rep.Markdown())
		fmt.Printf("\nwrote %s (took %v)\n", strings.Join(files, ", "), time.Since(start).Round(time.Second))
	}
	return err
}

// ints parses a comma-separated list of non-negative integers ("" is nil).
func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: want a non-negative integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
