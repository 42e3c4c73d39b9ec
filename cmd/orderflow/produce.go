package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/processor"
)

func newProduceCmd() *cobra.Command {
	var (
		k       kafkaFlags
		topic   string
		buffer  int
		timeout time.Duration
		headers []string
	)
	cmd := &cobra.Command{
		Use:   "produce --brokers B [--topic orders.events] [--header K=V]... [--timeout D] [--schema-registry-url URL] [FILE | -]",
		Short: "Write JSON-lines order events to Kafka as Avro, keyed by order id",
		Long: `Produce reads order events as JSON lines (from FILE, or stdin when FILE is
omitted or "-"), encodes each as Avro (single-object encoding, or the
Confluent wire format with --schema-registry-url) and writes it to --topic
with the order id as key and the --header headers. It waits until Kafka
acknowledged every record and reports on stderr how many were produced and
the rate. A line that is not a valid event is reported with its line number
and the field at fault, and skipped; the others are produced, and the exit
code is 1. occurred_at is an RFC 3339 time or epoch milliseconds. The topic
must exist (orderflow run creates it).

If no broker answers within --timeout, produce exits 1 at once, naming the
addresses it tried, rather than waiting for one to come up.

Flags can also be set in the environment as ORDERFLOW_<FLAG>
(ORDERFLOW_BROKERS, ORDERFLOW_SASL_PASSWORD, ...).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := applyConfig(cmd.Flags(), os.LookupEnv); err != nil {
				return configError(err)
			}
			brokers, err := k.check()
			if err != nil {
				return configError(err)
			}
			opts, err := k.conn.Opts()
			if err != nil {
				return configError(err)
			}
			if buffer < 1 {
				return configError(fmt.Errorf("--buffer %d: must be at least 1", buffer))
			}
			if timeout <= 0 {
				return configError(fmt.Errorf("--timeout %v: must be positive", timeout))
			}
			hdrs, err := parseHeaders(headers)
			if err != nil {
				return configError(err)
			}
			in := cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				defer f.Close()
				in = f
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			codec, err := newCodec(ctx, k.schemaRegistryURL, avro.Topics{Events: topic})
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			opts = append([]kgo.Opt{
				kgo.SeedBrokers(brokers...),
				kgo.ClientID("orderflow-produce"),
				kgo.DefaultProduceTopic(topic),
				kgo.MaxBufferedRecords(buffer),
				kgo.ProducerLinger(5 * time.Millisecond),
				kgo.UnknownTopicRetries(2),
			}, opts...)
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				return configError(err)
			}
			defer cl.Close()
			if err := pingBrokers(ctx, cl, brokers, timeout); err != nil {
				return kafkaExit(err)
			}
			if err := produce(ctx, cl, codec, topic, hdrs, in, cmd.ErrOrStderr()); err != nil {
				return kafkaExit(err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addKafkaFlags(fs, &k)
	fs.StringVar(&topic, "topic", processor.DefaultEventsTopic, "topic to write the events to")
	fs.IntVar(&buffer, "buffer", 10000, "records in flight (produced but not yet acknowledged) at most")
	fs.StringArrayVar(&headers, "header", nil, "add header K=V to every record (repeatable)")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "exit 1 if no broker answers within this long")
	return cmd
}

// newCodec returns the Avro codec: single-object encoding, or the Confluent
// wire format with the schema registry at url (registering the schemas of
// the record types topics names).
func newCodec(ctx context.Context, url string, topics avro.Topics) (*avro.Codec, error) {
	if url == "" {
		return avro.NewCodec()
	}
	rcl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		return nil, configError(fmt.Errorf("--schema-registry-url: %w", err))
	}
	c, err := avro.NewConfluentCodec(ctx, rcl, topics)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", url, err)
	}
	return c, nil
}

// produceResult counts the acknowledgements of a produce run.
type produceResult struct {
	mu       sync.Mutex
	acked    int
	failed   int
	firstErr error
}

// produce writes every event line of r to the client's default topic and
// reports to stderr. It returns an *exitError with code 1 when a line was
// bad or a record was not acknowledged.
func produce(ctx context.Context, cl *kgo.Client, codec *avro.Codec, topic string, headers []kgo.RecordHeader, r io.Reader, stderr io.Writer) error {
	var res produceResult
	promise := func(_ *kgo.Record, err error) {
		res.mu.Lock()
		defer res.mu.Unlock()
		if err != nil {
			res.failed++
			if res.firstErr == nil {
				res.firstErr = err
			}
			return
		}
		res.acked++
	}
	start := time.Now()
	br := bufio.NewReaderSize(r, 64<<10)
	bad := 0
	var readErr error
	for n := 1; ctx.Err() == nil; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			readErr = fmt.Errorf("reading events: %w", err)
			break
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			ev, perr := avro.EventFromJSON(trimmed)
			var val []byte
			if perr == nil {
				val, perr = codec.EncodeEvent(nil, &ev)
			}
			if perr != nil {
				bad++
				fmt.Fprintf(stderr, "line %d: %v (skipped)\n", n, perr)
			} else {
				// Produce blocks while the buffer is full.
				cl.Produce(ctx, &kgo.Record{Key: []byte(ev.OrderID), Value: val, Headers: headers}, promise)
			}
		}
		if err != nil { // io.EOF
			break
		}
	}
	flushErr := cl.Flush(ctx)
	elapsed := time.Since(start)

	res.mu.Lock()
	defer res.mu.Unlock()
	rate := float64(res.acked) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(stderr, "produced %d event(s) to %s in %v (%.0f events/s)", res.acked, topic, elapsed.Round(time.Millisecond), rate)
	if bad > 0 {
		fmt.Fprintf(stderr, "; %d bad line(s) skipped", bad)
	}
	if res.failed > 0 {
		fmt.Fprintf(stderr, "; %d event(s) NOT produced", res.failed)
	}
	fmt.Fprintln(stderr)

	var problems []error
	if readErr != nil {
		problems = append(problems, readErr)
	}
	if res.failed > 0 {
		err := res.firstErr
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			err = fmt.Errorf("%w: topic %s does not exist; start `orderflow run` once (it creates the topics) or create it", err, topic)
		}
		problems = append(problems, fmt.Errorf("%d event(s) not produced, the first because of: %w", res.failed, err))
	} else if flushErr != nil {
		problems = append(problems, fmt.Errorf("waiting for acknowledgements: %w", flushErr))
	}
	if ctx.Err() != nil {
		problems = append(problems, fmt.Errorf("interrupted: %w", ctx.Err()))
	}
	if bad > 0 {
		problems = append(problems, fmt.Errorf("%d bad line(s) skipped (see above)", bad))
	}
	if len(problems) > 0 {
		return &exitError{code: 1, err: errors.Join(problems...)}
	}
	return nil
}

// parseHeaders parses --header values, K=V each (V may be empty or hold
// '='); a header may repeat, as Kafka allows.
func parseHeaders(kvs []string) ([]kgo.RecordHeader, error) {
	var hs []kgo.RecordHeader
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: give NAME=VALUE", kv)
		}
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return hs, nil
}

// pingBrokers returns an error naming the brokers unless one of them answers
// within timeout. Without it a client waits for a broker for ever: records
// sit in its buffer and the user sees nothing.
func pingBrokers(ctx context.Context, cl *kgo.Client, brokers []string, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := cl.Ping(pctx)
	if err == nil || ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("no broker answered at %s within %v (--timeout): %w", strings.Join(brokers, ","), timeout, err)
}
