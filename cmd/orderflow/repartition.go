package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/orderflow/orderflow/processor"
)

// haltEnv names a test hook: `repartition` stops at the named checkpoint
// ("copy": mid-copy; "grown": after growing the input, before the switch),
// says so on stderr and waits to be killed, so that tests can kill it at a
// known moment.
const haltEnv = "ORDERFLOW_TEST_REPARTITION_HALT"

func newRepartitionCmd() *cobra.Command {
	var (
		k          kafkaFlags
		partitions int
		hash       string
		yes        bool
	)
	d := processor.DefaultConfig()
	cfg := d
	cmd := &cobra.Command{
		Use:   "repartition --brokers B [--app-id A] --partitions N [--partitioner murmur2|crc32] [--yes]",
		Short: "Grow the input topic and the state to N partitions",
		Long: `Repartition moves an application to more partitions: the input topic gets
--partitions N partitions and every order's state moves to the changelog
partition its order ID hashes to under N, by the partitioner the input's
producers use (--partitioner: murmur2, the default of Kafka's Java client and
franz-go, or crc32, librdkafka's default). It checks that every state is
where that partitioner puts its order today, and refuses otherwise.
Afterwards instances can be as many as N.

Before it starts:
  - stop every instance of the application (it refuses while the consumer
    group has members);
  - pause the producers of the input topic, after the instances have
    processed everything (it refuses while the group's lag is not 0). It
    checks at the end that the input's end offsets did not move, and refuses
    to finish otherwise.

The state is written to a new changelog, <app-id>-state-changelog-<N>,
verified against the old one, the input is grown, and only then does the new
changelog become the application's (the old one is deleted at the end). It
can be killed at any moment: run it again and it finishes the job. Until it
has finished, instances keep the old layout (or refuse to start, once the
input has grown).

Afterwards: start the instances (their stores notice the new layout and
restore from the new changelog), then resume the producers. A producer must
know the new partition count before it writes: restart it, or wait its
metadata refresh interval (metadata.max.age.ms, 5 minutes by default in
Kafka's clients), otherwise it routes orders by the old count.

Without --yes it asks for confirmation on the terminal. Exit codes: 0 done,
1 refused (members, lag, records written meanwhile) or failed, 2 a
configuration or topic layout error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			brokers, opts, err := k.setup(cmd.Flags())
			if err != nil {
				return err
			}
			if partitions <= 0 {
				return configError(errors.New("no partition count: give --partitions N (more than the input has now)"))
			}
			by, err := partitioner.Parse(hash)
			if err != nil {
				return configError(fmt.Errorf("--partitioner: %w", err))
			}
			cfg.Brokers, cfg.KafkaOpts = brokers, opts
			out := cmd.OutOrStdout()
			if !yes && !confirm(cmd.InOrStdin(), out, cfg, partitions) {
				return &exitError{code: 1, err: errors.New("not confirmed: nothing was changed (give --yes to run without asking)")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := processor.Repartition(ctx, cfg, processor.RepartitionOptions{
				Partitions:  partitions,
				Partitioner: by,
				Progress:    func(line string) { fmt.Fprintln(out, "repartition:", line) },
				Checkpoint:  haltAt(os.Getenv(haltEnv), cmd.ErrOrStderr()),
			})
			if err != nil {
				return repartitionExit(err)
			}
			if res.AlreadyDone {
				fmt.Fprintf(out, "repartition: done earlier; %s is the changelog of %s (%d partitions)\n", res.NewChangelog, cfg.AppID, res.To)
			} else {
				fmt.Fprintf(out, "repartition: done: %d orders moved from %s (%d partitions) to %s (%d partitions); copy and verification took %v, the whole run %v\n",
					res.Orders, res.OldChangelog, res.From, res.NewChangelog, res.To, res.Copy.Round(1e6), res.Total.Round(1e6))
			}
			fmt.Fprintln(out, "repartition: start the instances, then resume the producers once they know the new partition count (restart them, or wait their metadata.max.age.ms)")
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addKafkaFlags(fs, &k)
	fs.StringVar(&cfg.AppID, "app-id", d.AppID, "application id: the consumer group and the changelog topic's prefix")
	fs.StringVar(&cfg.Topics.Events, "events-topic", d.Topics.Events, "input topic of order events")
	fs.IntVar(&partitions, "partitions", 0, "the new partition count of the input and the state (required; more than now)")
	fs.StringVar(&hash, "partitioner", "murmur2", "how the input's producers choose an order's partition: "+partitioner.Names+
		" (murmur2: Kafka's Java client, franz-go; crc32: librdkafka's default, as kcat and confluent-kafka use)")
	fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// confirm says what repartition is about to do and reports whether the user
// typed yes.
func confirm(in io.Reader, out io.Writer, cfg processor.Config, partitions int) bool {
	fmt.Fprintf(out, "This grows topic %s to %d partitions and moves the state of application %s to %s.\n",
		cfg.Topics.Events, partitions, cfg.AppID, processor.RepartitionedChangelogTopic(cfg.AppID, partitions))
	fmt.Fprintf(out, "Every instance must be stopped and the producers of %s paused. Kafka cannot take partitions away.\n", cfg.Topics.Events)
	fmt.Fprint(out, "Type yes to continue: ")
	line, _ := bufio.NewReader(in).ReadString('\n')
	return strings.EqualFold(strings.TrimSpace(line), "yes")
}

// haltAt returns the Checkpoint of the test hook haltEnv: at stage, it says
// so on w and blocks until the process is killed.
func haltAt(stage string, w io.Writer) func(string) {
	if stage == "" {
		return nil
	}
	return func(s string) {
		if s == stage {
			fmt.Fprintf(w, "repartition: halted at %s (%s)\n", s, haltEnv)
			select {}
		}
	}
}

// repartitionExit maps Repartition's errors to exit codes: 2 for
// configuration and layout errors, 1 for refusals and failures.
func repartitionExit(err error) error {
	if errors.Is(err, processor.ErrConfig) || errors.Is(err, processor.ErrTopology) {
		return configError(err)
	}
	return kafkaExit(err)
}
