package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/demo"
	"github.com/orderflow/orderflow/internal/workload"
)

func newGenerateCmd() *cobra.Command {
	var (
		orders int
		seed   uint64
		rate   float64
	)
	cmd := &cobra.Command{
		Use:   "generate [--orders N] [--seed S] [--rate R]",
		Short: "Write a deterministic workload of order events as JSON lines (for produce)",
		Long: `Generate writes to stdout the order events of the workload the demo and the
benchmarks use, as JSON lines that orderflow produce reads:

  orderflow generate --orders 10000 | orderflow produce --brokers B

The workload is --orders order lifecycles of the default machine (placed,
paid, shipped, delivered, completed; some held, cancelled, lost or
returned), interleaved, with a share of events the processor rejects:
invalid transitions, failed guards, duplicates and events of unknown orders.
The same --seed gives the same lines (the demo's traffic with the same
--orders and --seed, without its malformed records, which are not events).
The events are dated from 2100-01-01, an order's events under 12h apart:
after any processor's clock, so that the default machine's timers (unpaid
24h, in transit 14d, return window 720h) fire only where later events of
their order reveal them, as orderflow replay (without --now) fires them.

--rate paces the lines (events per second); 0, the default, writes them as
fast as the reader takes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case orders < 1:
				return configError(fmt.Errorf("--orders %d: at least 1", orders))
			case seed == 0:
				return configError(fmt.Errorf("--seed 0: at least 1"))
			case rate < 0:
				return configError(fmt.Errorf("--rate %v: 0 (as fast as possible) or more", rate))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			items := workload.Generate(workload.Options{Seed: seed, Orders: orders})
			if err := writeEvents(ctx, cmd.OutOrStdout(), items, rate); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&orders, "orders", 1000, "orders (lifecycles) in the workload; about 6.5 events each")
	fs.Uint64Var(&seed, "seed", demo.DefaultSeed, "seed of the workload (same seed, same lines)")
	fs.Float64Var(&rate, "rate", 0, "events per second to write (0: as fast as possible)")
	return cmd
}

// writeEvents writes the events of items (not the malformed records) to w
// as JSON lines, rate per second when rate > 0. An interrupt (ctx done)
// ends it early without an error: what was written is whole lines.
func writeEvents(ctx context.Context, w io.Writer, items []workload.Item, rate float64) error {
	bw := bufio.NewWriter(w)
	start := time.Now()
	n := 0
	for _, it := range items {
		if it.Malformed != nil {
			continue
		}
		if rate > 0 {
			// Flush what is due, then wait for this line's time.
			if d := time.Until(start.Add(time.Duration(float64(n) / rate * float64(time.Second)))); d > 0 {
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("writing: %w", err)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(d):
				}
			}
		} else if ctx.Err() != nil {
			return bw.Flush()
		}
		line, err := avro.EventToJSON(&it.Event)
		if err != nil {
			return err
		}
		bw.Write(line)
		if err := bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		n++
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	return nil
}
