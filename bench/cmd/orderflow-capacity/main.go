// Command orderflow-capacity measures the capacity model's inputs against a
// real Kafka broker (bench.RunCapacity): events/s per core under
// exactly_once and at_least_once, store and changelog bytes per order,
// restore records/s per core, and a scaling run over 1, 2 and 4
// single-threaded instances; it writes docs/capacity.md from them and the
// figures as JSON in bench/results. `make capacity` runs it from the module
// root with a broker of its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orderflow/orderflow/bench"
	"github.com/orderflow/orderflow/bench/internal/cli"
)

func main() { cli.Main("orderflow-capacity", run) }

func run(ctx context.Context) error {
	var (
		o       bench.Options
		brokers = cli.BrokersFlag()
		doc     = flag.String("doc", "", "the capacity document to write (default docs/capacity.md; tiny: bench/.work/capacity.md)")
		out     = flag.String("out", "", "directory of the JSON figures (default bench/results; tiny: bench/.work)")
		from    = flag.String("from", "", "write the document from this earlier run's JSON figures instead of measuring (no broker needed)")
	)
	flag.BoolVar(&o.Tiny, "tiny", false, "tiny mode: every measurement on a small workload, in seconds (CI); its figures size nothing")
	flag.IntVar(&o.Rounds, "rounds", 0, "rounds of the exactly_once and at_least_once measurements, interleaved; the best counts (default 3; tiny 1)")
	flag.IntVar(&o.WarmupPasses, "warmup", 0, "passes of the broker warm-up (default 2; tiny 1; -1: none)")
	flag.StringVar(&o.OrderflowBin, "orderflow-bin", "", "built orderflow binary for the scaling run (default: go build ./cmd/orderflow)")
	flag.Parse()
	if *from != "" {
		c, err := bench.ReadCapacity(*from)
		if err != nil {
			return err
		}
		if *doc == "" {
			*doc = filepath.Join("docs", "capacity.md")
		}
		if err := c.WriteDoc(*doc); err != nil {
			return err
		}
		fmt.Printf("wrote %s from %s\n", *doc, *from)
		return nil
	}
	var berr error
	if o.Brokers, berr = cli.Brokers(*brokers, "capacity"); berr != nil {
		return berr
	}
	// Paths are relative to the module root, where make runs this.
	o.WorkDir = filepath.Join("bench", ".work")
	o.KafkaVersion = bench.KafkaVersionFromPom(".")
	o.Log = os.Stderr
	if *doc == "" {
		*doc = filepath.Join("docs", "capacity.md")
		if o.Tiny {
			*doc = filepath.Join(o.WorkDir, "capacity.md")
		}
	}
	if *out == "" {
		*out = filepath.Join("bench", "results")
		if o.Tiny {
			*out = o.WorkDir
		}
	}
	start := time.Now()
	c, err := bench.RunCapacity(ctx, o)
	if err != nil {
		return err
	}
	files, err := c.WriteFiles(*doc, *out)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (took %v)\n", strings.Join(files, ", "), time.Since(start).Round(time.Second))
	return nil
}
