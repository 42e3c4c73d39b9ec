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
	"time"

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
		partitions    []int32
		offset        string
		since         string
		count         int
		meta          bool
		raw           bool
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tail --brokers B --topic T [--from-beginning | --offset O | --since T] [--partition P]... [--count N] [--exit-at-end] [--meta] [--raw] [--kind K] [--timeout D]",
		Short: "Print the records of a topic as JSON lines",
		Long: `Tail reads a topic with read_committed isolation (only committed
transactions) and prints each record as one JSON line. The formats:
transitions (status topic), rejections, dead letters
({"kind":"dlq",...} with the error headers), events, and states or tombstones
(the <app-id>-state-changelog topic).

--kind auto (the default) picks the format by the topic's name (the default
topic names, and *-state-changelog), else tries each decoder per record. A
record that does not decode is printed as a {"kind":"dlq",...} line whose
error says why (and, when the record is of another kind than --kind, which
kind it looks like), and tail goes on. Dead-letter lines carry the record's
own headers ("headers": {name: value}).

Where to start, in every partition read (--partition P, repeatable; default
all): at the end (the default), --from-beginning (the same as --offset
beginning), --offset N (offset N), --offset -N (the last N offsets),
--offset end, or --since T (the first record with a timestamp at or after T,
an RFC 3339 time or a duration before now such as 15m).

With --exit-at-end tail stops when it reaches the end offsets the topic had
when tail started; with --count N after N records; otherwise it runs until
interrupted. If no broker answers within --timeout at start, tail exits 1,
naming the address.

--meta adds to every line an object "kafka": {"topic", "partition",
"offset", "timestamp" (RFC 3339, milliseconds), "key", "headers"}. --raw
prints each record's value as base64 ({"kind":"raw","key":..,
"value_base64":..}) without decoding it.

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
			fs := cmd.Flags()
			if fromBeginning {
				if fs.Changed("offset") {
					return configError(errors.New("--from-beginning and --offset: give one of them (--from-beginning is --offset beginning)"))
				}
				offset = "beginning"
			}
			start, err := parseStart(offset, since, time.Now())
			if err != nil {
				return configError(err)
			}
			if fs.Changed("since") && (fs.Changed("offset") || fromBeginning) {
				return configError(errors.New("--since and --offset (or --from-beginning): give one of them"))
			}
			if count < 0 {
				return configError(fmt.Errorf("--count %d: 0 (no limit) or more", count))
			}
			if timeout <= 0 {
				return configError(fmt.Errorf("--timeout %v: must be positive", timeout))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			codec, err := k.newCodec(ctx, avro.Topics{})
			if err != nil {
				return err
			}
			t := &tailer{
				brokers: brokers, opts: opts, topic: topic, kind: kind, codec: codec,
				partitions: partitions, start: start, exitAtEnd: exitAtEnd, count: count,
				meta: meta, raw: raw, timeout: timeout, stderr: cmd.ErrOrStderr(),
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
	fs.Int32SliceVar(&partitions, "partition", nil, "read only this partition (repeatable; default: all)")
	fs.BoolVar(&fromBeginning, "from-beginning", false, "start at the beginning of the topic (default: at its end)")
	fs.StringVar(&offset, "offset", "end", "where to start in each partition: beginning, end, N (offset N) or -N (the last N offsets)")
	fs.StringVar(&since, "since", "", "start at the first record with a timestamp at or after this RFC 3339 time or duration ago (15m)")
	fs.IntVar(&count, "count", 0, "exit after printing this many records (0: no limit)")
	fs.BoolVar(&exitAtEnd, "exit-at-end", false, "stop at the end offsets the topic had at start")
	fs.BoolVar(&meta, "meta", false, `add "kafka": {topic, partition, offset, timestamp, key, headers} to every line`)
	fs.BoolVar(&raw, "raw", false, "print values as base64, without decoding them")
	fs.StringVar(&kind, "kind", kindAuto, "record format: "+strings.Join(tailKinds, ", "))
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "exit 1 if no broker answers within this long at start")
	return cmd
}

// startAt says where tail starts reading in each partition.
type startAt struct {
	how   string // "beginning", "end", "offset" (n), "last" (n), "since" (at)
	n     int64
	since time.Time
}

// parseStart parses --offset and --since (which wins when given).
func parseStart(offset, since string, now time.Time) (startAt, error) {
	if since != "" {
		if t, err := time.Parse(time.RFC3339, since); err == nil {
			return startAt{how: "since", since: t}, nil
		}
		d, err := time.ParseDuration(since)
		if err != nil || d < 0 {
			return startAt{}, fmt.Errorf("--since %q: give an RFC 3339 time (2026-01-01T10:00:00Z) or a duration before now (15m)", since)
		}
		return startAt{how: "since", since: now.Add(-d)}, nil
	}
	switch offset {
	case "beginning", "end":
		return startAt{how: offset}, nil
	}
	n, err := strconv.ParseInt(offset, 10, 64)
	switch {
	case err != nil:
		return startAt{}, fmt.Errorf("--offset %q: use beginning, end, N (an offset) or -N (the last N offsets)", offset)
	case n < 0:
		return startAt{how: "last", n: -n}, nil
	}
	return startAt{how: "offset", n: n}, nil
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
	case processor.IsChangelogTopic(topic):
		return kindChangelog
	}
	return kindAuto
}

type tailer struct {
	brokers    []string
	opts       []kgo.Opt
	topic      string
	kind       string
	codec      *avro.Codec
	partitions []int32 // nil: all
	start      startAt
	exitAtEnd  bool
	count      int // 0: no limit
	meta, raw  bool
	timeout    time.Duration // for the first broker's answer
	stderr     io.Writer
	noted      bool // the kind mismatch note was printed
}

// run prints the topic's records to w until ctx is done (nil), count records
// are printed or, with exitAtEnd, the end offsets seen at start are reached.
func (t *tailer) run(ctx context.Context, w io.Writer) error {
	from, want, err := t.positions(ctx)
	if err != nil {
		return err
	}
	if t.exitAtEnd && len(want) == 0 {
		return nil // nothing to read up to the end
	}
	at := map[int32]kgo.Offset{}
	for p, o := range from {
		at[p] = kgo.NewOffset().At(o)
	}
	// KeepControlRecords: transaction markers occupy offsets; receiving
	// them shows the position reached the end even when a partition ends
	// with a marker (after a commit or an abort). They are not printed.
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(t.brokers...),
		kgo.ClientID("orderflow-tail"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.topic: at}),
		// An offset that retention removed meanwhile: from the start.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, t.opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()

	bw := bufio.NewWriter(w)
	defer bw.Flush()
	printed := 0
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
			if werr != nil || (t.count > 0 && printed >= t.count) {
				return
			}
			end, ok := want[r.Partition]
			if t.exitAtEnd && (!ok || r.Offset >= end) {
				return
			}
			if !r.Attrs.IsControl() {
				werr = t.print(bw, r)
				printed++
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
		if (t.exitAtEnd && len(want) == 0) || (t.count > 0 && printed >= t.count) {
			return nil
		}
	}
}

// positions returns, per partition to read, the offset to start at and,
// for the partitions with records to read, the last stable offset (the
// read_committed end) at this moment.
func (t *tailer) positions(ctx context.Context) (from, want map[int32]int64, err error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(t.brokers...), kgo.ClientID("orderflow-tail")}, t.opts...)...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	if err := pingBrokers(ctx, cl, t.brokers, t.timeout); err != nil {
		return nil, nil, err
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, t.topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, nil, fmt.Errorf("topic %s does not exist", t.topic)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing the end offsets of %s: %w", t.topic, err)
	}
	if len(ends) == 0 {
		return nil, nil, fmt.Errorf("topic %s does not exist", t.topic)
	}
	starts, err := adm.ListStartOffsets(ctx, t.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing the start offsets of %s: %w", t.topic, err)
	}
	var after kadm.ListedOffsets
	if t.start.how == "since" {
		after, err = adm.ListOffsetsAfterMilli(ctx, t.start.since.UnixMilli(), t.topic)
		if err == nil {
			err = after.Error()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("listing the offsets of %s at %s: %w", t.topic, t.start.since.Format(time.RFC3339), err)
		}
	}
	read := map[int32]bool{}
	for _, p := range t.partitions {
		if _, ok := ends.Lookup(t.topic, p); !ok {
			return nil, nil, configError(fmt.Errorf("--partition %d: topic %s has partitions 0 to %d", p, t.topic, len(ends[t.topic])-1))
		}
		read[p] = true
	}
	from, want = map[int32]int64{}, map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if len(read) > 0 && !read[o.Partition] {
			return
		}
		first, end := int64(0), o.Offset
		if s, ok := starts.Lookup(t.topic, o.Partition); ok {
			first = s.Offset
		}
		var at int64
		switch t.start.how {
		case "beginning":
			at = first
		case "end":
			at = end
		case "offset":
			at = t.start.n
		case "last":
			at = end - t.start.n
		case "since":
			at = end
			if a, ok := after.Lookup(t.topic, o.Partition); ok && a.Offset >= 0 {
				at = a.Offset
			}
		}
		at = min(max(at, first), end)
		from[o.Partition] = at
		if at < end {
			want[o.Partition] = end
		}
	})
	return from, want, nil
}

// print writes one record as a JSON line.
func (t *tailer) print(w *bufio.Writer, r *kgo.Record) error {
	var line []byte
	var err error
	if t.raw {
		line, err = json.Marshal(rawLine{Kind: "raw", Key: keyString(r.Key), Value: r.Value})
	} else {
		line, err = t.decode(r)
		if err != nil {
			line, err = json.Marshal(avro.DeadLetter{
				Key:             string(r.Key),
				Error:           fmt.Sprintf("tail: %v", err),
				SourceTopic:     r.Topic,
				SourcePartition: r.Partition,
				SourceOffset:    r.Offset,
				Value:           r.Value,
				Headers:         headerMap(r.Headers, nil),
			})
		}
	}
	if err != nil {
		return err
	}
	if t.meta {
		m, err := json.Marshal(recordMeta{
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Timestamp: r.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			Key:       keyString(r.Key),
			Headers:   headerMap(r.Headers, map[string]string{}),
		})
		if err != nil {
			return err
		}
		// Every line is a JSON object: add the member before its brace.
		line = append(line[:len(line)-1:len(line)-1], `,"kafka":`...)
		line = append(append(line, m...), '}')
	}
	w.Write(line)
	return w.WriteByte('\n')
}

// rawLine is a record printed with --raw.
type rawLine struct {
	Kind  string  `json:"kind"`
	Key   *string `json:"key"`
	Value []byte  `json:"value_base64"`
}

// recordMeta is the "kafka" member --meta adds to a line.
type recordMeta struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp string            `json:"timestamp"`
	Key       *string           `json:"key"`
	Headers   map[string]string `json:"headers"`
}

// keyString is a record key as a JSON line shows it: null for no key.
func keyString(k []byte) *string {
	if k == nil {
		return nil
	}
	s := string(k)
	return &s
}

// headerMap adds hs to m (by name; of repeated names the last) and returns
// it; with no headers it returns m as it is (nil: the member is left out).
func headerMap(hs []kgo.RecordHeader, m map[string]string) map[string]string {
	for _, h := range hs {
		if m == nil {
			m = map[string]string{}
		}
		m[h.Key] = string(h.Value)
	}
	return m
}

// decode renders r as a JSON line of the tailer's kind.
func (t *tailer) decode(r *kgo.Record) ([]byte, error) {
	kind := t.kind
	if kind != kindAuto {
		line, err := decodeAs(t.codec, kind, r)
		if err != nil {
			if other := t.kindOf(r, kind); other != "" {
				t.noteKind(kind, other)
				return nil, fmt.Errorf("%w; the record looks like a record of kind %s (give --kind %s or --kind auto)", err, other, other)
			}
		}
		return line, err
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

// kindOf returns the kind other than not whose decoder takes r, or "".
func (t *tailer) kindOf(r *kgo.Record, not string) string {
	for _, k := range []string{kindDLQ, kindStatus, kindRejections, kindEvents, kindChangelog} {
		if k == not || (k == kindChangelog && r.Value == nil) {
			continue // every decoder but the changelog's refuses a tombstone
		}
		if _, err := decodeAs(t.codec, k, r); err == nil {
			return k
		}
	}
	return ""
}

// noteKind says once on stderr that the records are of another kind than
// the one tail decodes them as: the lines say it too, but a screen of dlq
// lines hides why.
func (t *tailer) noteKind(kind, other string) {
	if t.noted || t.stderr == nil {
		return
	}
	t.noted = true
	fmt.Fprintf(t.stderr, "orderflow tail: records of %s look like %s records, not %s: give --kind %s (or --kind auto)\n", t.topic, other, kind, other)
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
		// The record's own headers: the input's, as the processor copied
		// them. The ones it added to say why are members of their own.
		d := avro.DeadLetter{Key: string(r.Key), Value: r.Value}
		for _, h := range r.Headers {
			switch h.Key {
			case processor.HeaderError, processor.HeaderSourceTopic, processor.HeaderSourcePartition, processor.HeaderSourceOffset:
			default:
				d.Headers = headerMap([]kgo.RecordHeader{h}, d.Headers)
			}
		}
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
