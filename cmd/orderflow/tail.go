package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// Record kinds `tail` decodes.
const (
	kindAuto       = "auto"
	kindStatus     = "status"
	kindRejections = "rejections"
	kindDLQ        = "dlq"
	kindEvents     = "events"
	kindChangelog  = "changelog"
)

var tailKinds = []string{kindAuto, kindStatus, kindRejections, kindDLQ, kindEvents, kindChangelog}

func newTailCmd() *cobra.Command {
	var (
		k             kafkaFlags
		topic         string
		kind          string
		fromBeginning bool
		exitAtEnd     bool
	)
	cmd := &cobra.Command{
		Use:   "tail --brokers B --topic T [--from-beginning] [--exit-at-end] [--kind auto|status|rejections|dlq|events|changelog]",
		Short: "Print the records of a topic as JSON lines",
		Long: `Tail reads a topic with read_committed isolation (only committed
transactions) and prints each record as one JSON line in the formats of
The JSON formats: transitions (status topic), rejections, dead letters
({"kind":"dlq",...} with the error headers), events, and states or tombstones
(the <app-id>-state-changelog topic).

--kind auto (the default) picks the format by the topic's name (the default
topic names, and *-state-changelog), else tries each decoder per record. A
record that does not decode is printed as a {"kind":"dlq",...} line whose
error says why, and tail goes on.

Without --from-beginning tail starts at the end of the topic. With
--exit-at-end it stops when it reaches the end offsets the topic had when
tail started; otherwise it runs until interrupted.

Flags can also be set in the environment as ORDERFLOW_<FLAG>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			if topic == "" {
				return configError(errors.New("no topic: give --topic T"))
			}
			valid := false
			for _, k := range tailKinds {
				valid = valid || k == kind
			}
			if !valid {
				return configError(fmt.Errorf("--kind %q: use one of %s", kind, strings.Join(tailKinds, ", ")))
			}
			if kind == kindAuto {
				kind = kindOfTopic(topic)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			codec, err := k.newCodec(ctx, avro.Topics{})
			if err != nil {
				return err
			}
			t := &tailer{
				brokers: brokers, opts: opts, topic: topic, kind: kind, codec: codec,
				fromBeginning: fromBeginning, exitAtEnd: exitAtEnd,
			}
			if err := t.run(ctx, cmd.OutOrStdout()); err != nil {
				return kafkaExit(err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addKafkaFlags(fs, &k)
	addWriterSchemasFlag(fs, &k.writerSchemas)
	fs.StringVar(&topic, "topic", "", "topic to read (required)")
	fs.BoolVar(&fromBeginning, "from-beginning", false, "start at the beginning of the topic (default: at its end)")
	fs.BoolVar(&exitAtEnd, "exit-at-end", false, "stop at the end offsets the topic had at start")
	fs.StringVar(&kind, "kind", kindAuto, "record format: "+strings.Join(tailKinds, ", "))
	return cmd
}

// kindOfTopic is the record kind of a topic by its name, or kindAuto.
func kindOfTopic(topic string) string {
	switch {
	case topic == processor.DefaultStatusTopic:
		return kindStatus
	case topic == processor.DefaultRejectionsTopic:
		return kindRejections
	case topic == processor.DefaultDLQTopic:
		return kindDLQ
	case topic == processor.DefaultEventsTopic:
		return kindEvents
	case strings.HasSuffix(topic, processor.ChangelogTopic("")):
		return kindChangelog
	}
	return kindAuto
}

type tailer struct {
	brokers       []string
	opts          []kgo.Opt
	topic         string
	kind          string
	codec         *avro.Codec
	fromBeginning bool
	exitAtEnd     bool
}

// run prints the topic's records to w until ctx is done (nil) or, with
// exitAtEnd, the end offsets seen at start are reached.
func (t *tailer) run(ctx context.Context, w io.Writer) error {
	want, err := t.endOffsets(ctx)
	if err != nil {
		return err
	}
	if t.exitAtEnd && (!t.fromBeginning || len(want) == 0) {
		return nil // nothing to read up to the end
	}
	reset := kgo.NewOffset().AtEnd()
	if t.fromBeginning {
		reset = kgo.NewOffset().AtStart()
	}
	// KeepControlRecords: transaction markers occupy offsets; receiving
	// them shows the position reached the end even when a partition ends
	// with a marker (after a commit or an abort). They are not printed.
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(t.brokers...),
		kgo.ClientID("orderflow-tail"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeTopics(t.topic),
		kgo.ConsumeResetOffset(reset),
	}, t.opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()

	bw := bufio.NewWriter(w)
	defer bw.Flush()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return bw.Flush()
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("reading %s partition %d: %w", t.topic, p, err)
			}
		})
		if ferr != nil {
			bw.Flush()
			return ferr
		}
		var werr error
		fs.EachRecord(func(r *kgo.Record) {
			if werr != nil {
				return
			}
			end, ok := want[r.Partition]
			if t.exitAtEnd && (!ok || r.Offset >= end) {
				return
			}
			if !r.Attrs.IsControl() {
				werr = t.print(bw, r)
			}
			if t.exitAtEnd && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
		if werr != nil {
			return fmt.Errorf("writing: %w", werr)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		if t.exitAtEnd && len(want) == 0 {
			return nil
		}
	}
}

// endOffsets returns, per partition with records, the last stable offset
// (the read_committed end) at this moment.
func (t *tailer) endOffsets(ctx context.Context) (map[int32]int64, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(t.brokers...), kgo.ClientID("orderflow-tail")}, t.opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, t.topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("topic %s does not exist", t.topic)
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", t.topic, err)
	}
	if len(ends) == 0 {
		return nil, fmt.Errorf("topic %s does not exist", t.topic)
	}
	starts, err := adm.ListStartOffsets(ctx, t.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the start offsets of %s: %w", t.topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(t.topic, o.Partition); ok && o.Offset > s.Offset {
			want[o.Partition] = o.Offset
		}
	})
	return want, nil
}

// print writes one record as a JSON line.
func (t *tailer) print(w *bufio.Writer, r *kgo.Record) error {
	line, err := t.decode(r)
	if err != nil {
		line, err = json.Marshal(avro.DeadLetter{
			Key:             string(r.Key),
			Error:           fmt.Sprintf("tail: %v", err),
			SourceTopic:     r.Topic,
			SourcePartition: r.Partition,
			SourceOffset:    r.Offset,
			Value:           r.Value,
		})
		if err != nil {
			return err
		}
	}
	w.Write(line)
	return w.WriteByte('\n')
}

// decode renders r as a JSON line of the tailer's kind.
func (t *tailer) decode(r *kgo.Record) ([]byte, error) {
	kind := t.kind
	if kind != kindAuto {
		return decodeAs(t.codec, kind, r)
	}
	if header(r, processor.HeaderError) != nil {
		return decodeAs(t.codec, kindDLQ, r)
	}
	if r.Value == nil {
		return decodeAs(t.codec, kindChangelog, r) // a tombstone
	}
	var errs []string
	for _, k := range []string{kindStatus, kindRejections, kindEvents, kindChangelog} {
		line, err := decodeAs(t.codec, k, r)
		if err == nil {
			return line, nil
		}
		errs = append(errs, k+": "+err.Error())
	}
	return nil, fmt.Errorf("not a record of any orderflow topic (%s)", strings.Join(errs, "; "))
}

func decodeAs(codec *avro.Codec, kind string, r *kgo.Record) ([]byte, error) {
	switch kind {
	case kindStatus:
		var s avro.StatusChange
		if err := codec.DecodeStatusChange(r.Value, &s); err != nil {
			return nil, err
		}
		return json.Marshal(s)
	case kindRejections:
		var rj avro.Rejection
		if err := codec.DecodeRejection(r.Value, &rj); err != nil {
			return nil, err
		}
		return json.Marshal(rj)
	case kindEvents:
		var ev topology.Event
		if err := codec.DecodeEvent(r.Value, &ev); err != nil {
			return nil, err
		}
		return avro.EventToJSON(&ev)
	case kindChangelog:
		if r.Value == nil {
			return json.Marshal(avro.StateRecord{OrderID: string(r.Key)})
		}
		var st topology.State
		if err := codec.DecodeState(r.Value, &st); err != nil {
			return nil, err
		}
		return json.Marshal(avro.StateRecord{OrderID: string(r.Key), State: &st})
	case kindDLQ:
		d := avro.DeadLetter{Key: string(r.Key), Value: r.Value}
		if v := header(r, processor.HeaderError); v != nil {
			d.Error = string(v)
		}
		if v := header(r, processor.HeaderSourceTopic); v != nil {
			d.SourceTopic = string(v)
		}
		if v := header(r, processor.HeaderSourcePartition); v != nil {
			p, err := strconv.ParseInt(string(v), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("header %s %q is not a partition", processor.HeaderSourcePartition, v)
			}
			d.SourcePartition = int32(p)
		}
		if v := header(r, processor.HeaderSourceOffset); v != nil {
			o, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("header %s %q is not an offset", processor.HeaderSourceOffset, v)
			}
			d.SourceOffset = o
		}
		if d.Error == "" {
			return nil, fmt.Errorf("no %s header: not a dead letter", processor.HeaderError)
		}
		return json.Marshal(d)
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// header returns the value of the last header named key, nil if none.
func header(r *kgo.Record, key string) []byte {
	var v []byte
	for _, h := range r.Headers {
		if h.Key == key {
			v = h.Value
			if v == nil {
				v = []byte{}
			}
		}
	}
	return v
}
