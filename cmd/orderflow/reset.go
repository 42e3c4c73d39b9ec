package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/processor"
)

func newResetCmd() *cobra.Command {
	var (
		k                kafkaFlags
		c                processor.ResetConfig
		earliest, latest bool
		datetime         string
		yes              bool
	)
	cmd := &cobra.Command{
		Use:   "reset --brokers B [--app-id A] [--to-earliest | --to-datetime RFC3339 | --to-latest] [--state-dir DIR] [--dry-run] [--yes]",
		Short: "Reset an application: reprocess its input with state rebuilt from nothing",
		Long: `Reset makes the next run of application --app-id reprocess its input topic
from a position (--to-earliest, the default; --to-datetime; --to-latest) with
its state rebuilt by that reprocessing, as Kafka Streams' application reset
tool does:

  - it refuses (exit 1) while the consumer group has members, naming the
    running instances, or while a stopped instance's transaction is open;
  - it deletes the changelog topic and creates it again, empty, with the
    same partitions and settings;
  - it commits the group's offsets of the input topic at the position, and
    marks the changelog as reset;
  - it deletes --state-dir, the local state store of one instance. The
    other instances' stores discard their state when they start: they see
    that the changelog was reset.

--to-datetime and --to-latest rebuild the state only from the events they
reprocess: orders placed before are unknown to the second pass.

It prints the plan first; --dry-run stops there, and without --yes it asks
for confirmation on stdin. The output topics are kept: the second pass
appends one new outcome per reprocessed event (see README, "Reprocessing").

Flags can also be set in the environment as ORDERFLOW_<FLAG>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := applyConfig(cmd.Flags(), os.LookupEnv); err != nil {
				return configError(err)
			}
			var err error
			if c.Brokers, err = k.check(); err != nil {
				return configError(err)
			}
			if c.KafkaOpts, err = k.conn.Opts(); err != nil {
				return configError(err)
			}
			n := 0
			for _, set := range []bool{earliest, latest, datetime != ""} {
				if set {
					n++
				}
			}
			if n > 1 {
				return configError(errors.New("give one of --to-earliest, --to-datetime and --to-latest"))
			}
			switch {
			case latest:
				c.To = processor.ResetToLatest
			case datetime != "":
				c.To = processor.ResetToTime
				if c.At, err = time.Parse(time.RFC3339Nano, datetime); err != nil {
					return configError(fmt.Errorf("--to-datetime %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z: %w", datetime, err))
				}
			default:
				c.To = processor.ResetToEarliest
			}
			c.Out = cmd.OutOrStdout()
			if !yes && !c.DryRun {
				in := bufio.NewReader(cmd.InOrStdin())
				c.Confirm = func() bool {
					fmt.Fprintf(cmd.ErrOrStderr(), "Type yes to reset application %s: ", c.AppID)
					line, _ := in.ReadString('\n')
					return strings.TrimSpace(line) == "yes"
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			err = processor.Reset(ctx, c)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, processor.ErrConfig):
				return configError(err)
			case errors.Is(err, processor.ErrResetDeclined):
				return &exitError{code: 1, err: fmt.Errorf("%w (give --yes to skip the question)", err)}
			}
			return &exitError{code: 1, err: err}
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addKafkaFlags(fs, &k)
	fs.StringVar(&c.AppID, "app-id", processor.DefaultAppID, "application id: the consumer group and the changelog topic's prefix")
	fs.StringVar(&c.Events, "events-topic", processor.DefaultEventsTopic, "input topic of order events")
	fs.BoolVar(&earliest, "to-earliest", false, "reprocess the input from its earliest offsets (the default)")
	fs.StringVar(&datetime, "to-datetime", "", "reprocess the input from its first records at or after this time (RFC 3339)")
	fs.BoolVar(&latest, "to-latest", false, "reprocess nothing: move the group to the input's end, with empty state")
	fs.StringVar(&c.StateDir, "state-dir", "", "local state directory of an instance to delete (the other instances discard theirs when they start)")
	fs.BoolVar(&c.DryRun, "dry-run", false, "print what the reset would do and change nothing")
	fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}
