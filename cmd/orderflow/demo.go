package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var (
		o       demo.Options
		brokers []string
	)
	cmd := &cobra.Command{
		Use:   "demo [--brokers B] [--events N] [--orders N] [--rate R] [--instances K] [--chaos] [--timers] [--duration D] [--seed S]",
		Short: "Run the whole system in one process on an embedded Kafka and check the outputs add up",
		Long: `Demo starts an embedded Kafka (franz-go's kfake: the real protocol, with
transactions and compaction; or uses --brokers), creates the topics, starts
--instances processor instances in this process (each with its own state
directory under a temporary directory removed at exit), produces generated
traffic for the default order machine (mostly valid lifecycles, some invalid
transitions, guard failures, duplicates, stale and unknown-order events,
malformed records; deterministic with --seed) and shows the progress. With
--chaos one instance is stopped mid-run and started again with an empty state
directory, so its partitions move, and come back restored from the changelog.
With --timers the default machine runs with its timers shortened to seconds
(unpaid placed orders are cancelled after 2s, delivered ones completed after
3s, parcels lost after 4s in transit), every event is dated when it is sent
and a fifth of the orders are abandoned, so that the instances' clocks fire
timers; the demo waits for the last of them, and the summary lists them.

At the end it reads the topics with read_committed and prints events,
transitions, rejections by reason, dead letters and the final state of every
order, and checks events = transitions + rejections + dlq. It exits 0 only if
the checks hold.

With --brokers every name gets a unique run suffix (printed at the start), so
runs never collide; the topics are left for you to inspect with
orderflow tail. The first SIGINT ends the traffic early (the demo still
drains and checks); a second one aborts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			if fs.Changed("duration") && !fs.Changed("events") {
				o.Events = 0 // the duration decides
			}
			// In demo.Options a zero means "the default"; on the command
			// line it is a mistake.
			switch {
			case o.Instances < 1:
				return configError(fmt.Errorf("--instances %d: at least 1", o.Instances))
			case o.Partitions < 1:
				return configError(fmt.Errorf("--partitions %d: at least 1", o.Partitions))
			case o.Events == 0 && o.Duration <= 0:
				return configError(errors.New("--events 0: give a positive count, or --duration"))
			}
			for _, b := range brokers {
				if b = strings.TrimSpace(b); b != "" {
					o.Brokers = append(o.Brokers, b)
				}
			}
			w := cmd.OutOrStdout()
			o.Out = w
			o.Terminal = isTerminal(w) && os.Getenv("TERM") != "dumb"

			ctx, cancel := context.WithCancel(cmd.Context())
			stop := make(chan struct{})
			o.Stop = stop
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			watched := make(chan struct{})
			defer func() { cancel(); <-watched }()
			go func() {
				defer close(watched)
				select {
				case <-sigs:
				case <-ctx.Done():
					return
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "orderflow demo: ending the traffic; draining (interrupt again to abort)")
				close(stop)
				select {
				case <-sigs:
					cancel()
				case <-ctx.Done():
				}
			}()

			s, err := demo.Run(ctx, o)
			if errors.Is(err, demo.ErrOptions) {
				return configError(err)
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if !s.OK() {
				return &exitError{code: 1, err: errors.New("demo: the outputs do not add up to the input (see the checks above)")}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringSliceVar(&brokers, "brokers", nil, "use this Kafka cluster, HOST:PORT[,HOST:PORT] (default: an embedded kfake cluster)")
	fs.IntVar(&o.Events, "events", demo.DefaultEvents, "records to produce (with --duration and without --events: no limit)")
	fs.IntVar(&o.Orders, "orders", 0, "distinct orders in the traffic (default: as many as --events needs, about 4 events each)")
	fs.Float64Var(&o.Rate, "rate", demo.DefaultRate, "records per second to produce (0: as fast as possible)")
	fs.IntVar(&o.Instances, "instances", demo.DefaultInstances, "processor instances, in this process")
	fs.Int32Var(&o.Partitions, "partitions", demo.DefaultPartitions, "partitions of the topics")
	fs.BoolVar(&o.Timers, "timers", false, "run the default machine with its timers in seconds and abandon a fifth of the orders, so that timers fire during the demo")
	fs.BoolVar(&o.Chaos, "chaos", false, "stop an instance mid-run and start it again with an empty state dir (a rebalance and a restore)")
	fs.DurationVar(&o.Duration, "duration", 0, "end the traffic after this long (0: when --events are produced)")
	fs.Uint64Var(&o.Seed, "seed", demo.DefaultSeed, "seed of the generated traffic (same seed, same traffic)")
	return cmd
}
