package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// recordView is what a reader sees of a record's place and envelope.
type recordView struct {
	Partition int32
	Offset    int64
	Millis    int64
	Key       *string
	Headers   map[string]string
}

// metaViews parses the "kafka" members of tail --meta lines, by
// partition/offset.
func metaViews(t *testing.T, out, topic string) map[string]recordView {
	t.Helper()
	views := map[string]recordView{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var line struct {
			Kafka *recordMeta `json:"kafka"`
		}
		if err := json.Unmarshal([]byte(l), &line); err != nil || line.Kafka == nil {
			t.Fatalf("not a line with a kafka member: %q (%v)", l, err)
		}
		m := line.Kafka
		at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", m.Timestamp)
		if err != nil || m.Topic != topic || m.Headers == nil {
			t.Fatalf("kafka member %+v: topic, RFC 3339 timestamp with milliseconds and headers object wanted (%v)", m, err)
		}
		views[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = recordView{m.Partition, m.Offset, at.UnixMilli(), m.Key, m.Headers}
	}
	return views
}

// kcatViews reads topic with kcat (read_committed, to its end), or, where
// kcat is not installed and this is not CI, with a franz-go consumer.
func kcatViews(ctx context.Context, t *testing.T, c *kafkatest.Cluster, topic string) map[string]recordView {
	t.Helper()
	views := map[string]recordView{}
	path, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed: .ci/run installs it (apt-get install kcat)")
		}
		t.Log("kcat is not installed: comparing with a franz-go consumer's view instead")
		for _, r := range c.ReadCommitted(t, topic) {
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[h.Key] = string(h.Value)
			}
			views[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = recordView{r.Partition, r.Offset, r.Timestamp.UnixMilli(), keyString(r.Key), hs}
		}
		return views
	}
	cmd := exec.CommandContext(ctx, path, "-C", "-b", brokersArg(c), "-t", topic, "-o", "beginning", "-e", "-q", "-J",
		"-X", "isolation.level=read_committed")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r struct {
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			TS        int64    `json:"ts"`
			Key       *string  `json:"key"`
			Headers   []string `json:"headers"` // name, value, name, value...
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("kcat printed %q: %v", sc.Text(), err)
		}
		hs := map[string]string{}
		for i := 0; i+1 < len(r.Headers); i += 2 {
			hs[r.Headers[i]] = r.Headers[i+1]
		}
		views[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = recordView{r.Partition, r.Offset, r.TS, r.Key, hs}
	}
	return views
}

// TestTailMetaMatchesKcat writes records with keys (and one without),
// headers and timestamps of their own to three partitions, some in a
// committed transaction (its marker takes an offset) and some in an
// aborted one, and checks that tail --meta shows each committed record at
// the partition, offset, timestamp, key and headers kcat shows it at.
func TestTailMetaMatchesKcat(t *testing.T) {
	clearEnv(t)
	c := kafkatest.Real(t)
	checkLeaks(t, c)
	topic := kafkatest.Name(t, "status")
	c.CreateTopic(t, topic, 3, nil)
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := func(p int32, key string, i int, hs ...string) *kgo.Record {
		v, err := codec.EncodeStatusChange(nil, &avro.StatusChange{
			OrderID: key, EventID: fmt.Sprintf("e%d", i), EventType: "place_order", ToState: "placed", Version: 1, OccurredAt: at,
		})
		if err != nil {
			t.Fatal(err)
		}
		r := &kgo.Record{Partition: p, Key: []byte(key), Value: v, Timestamp: at.Add(time.Duration(i)*time.Minute + 123*time.Millisecond)}
		for j := 0; j+1 < len(hs); j += 2 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: hs[j], Value: []byte(hs[j+1])})
		}
		return r
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plain := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	noKey := rec(2, "o0", 5, "only", "header")
	noKey.Key = nil
	garbage := &kgo.Record{Partition: 1, Key: []byte("bad"), Value: []byte("not avro"), Timestamp: at,
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-9")}, {Key: "empty", Value: []byte{}}}}
	if err := plain.ProduceSync(ctx, rec(0, "o1", 1, "trace", "t-1", "source", "web"), rec(0, "o2", 2),
		rec(1, "o3", 3, "trace", "t-3"), noKey, garbage).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn := c.Client(t, kgo.TransactionalID(kafkatest.Name(t, "txn")), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, end := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txn.ProduceSync(ctx, rec(0, "o4", 6, "txn", "yes"), rec(1, "o5", 7)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	if err := plain.ProduceSync(ctx, rec(0, "o6", 8, "after", "txn")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--kind", "status", "--meta", "--from-beginning", "--exit-at-end")
	if r.err != nil {
		t.Fatalf("tail: %v\n%s", r.err, r.stderr)
	}
	got := metaViews(t, r.stdout, topic)
	want := kcatViews(ctx, t, c, topic)
	if len(want) != 8 {
		t.Fatalf("the reference reader saw %d records, want the 8 committed ones: %v", len(want), want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tail --meta:\n%v\nthe reference reader:\n%v", got, want)
	}
	// The undecodable record's line is a dead letter with its headers.
	for _, l := range jsonLines(t, r.stdout) {
		if l["key"] == "bad" {
			if l["kind"] != "dlq" || !reflect.DeepEqual(l["headers"], map[string]any{"trace": "t-9", "empty": ""}) {
				t.Errorf("dead-letter line without the record's headers: %v", l)
			}
		}
	}
}

// TestTailStartCountRaw checks where tail starts (--partition, --offset,
// --since), --count and --raw on a topic of two partitions holding five
// records each, with timestamps 40 minutes apart, the last two of each
// within the past hour.
func TestTailStartCountRaw(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		topic := kafkatest.Name(t, "events")
		c.CreateTopic(t, topic, 2, nil)
		codec, err := avro.NewCodec()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		stamp := func(i int) time.Time { return now.Add(-time.Duration(4-i) * 40 * time.Minute) } // i = 3, 4: within the hour
		var recs []*kgo.Record
		values := map[string][]byte{}
		for p := range int32(2) {
			for i := range 5 {
				ev := topology.Event{EventID: fmt.Sprintf("p%d-%d", p, i), OrderID: fmt.Sprintf("o%d", p), Type: "place_order", OccurredAt: now}
				v, err := codec.EncodeEvent(nil, &ev)
				if err != nil {
					t.Fatal(err)
				}
				values[ev.EventID] = v
				recs = append(recs, &kgo.Record{Partition: p, Key: []byte(ev.EventID), Value: v, Timestamp: stamp(i)})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		tail := func(args ...string) []string {
			t.Helper()
			r := cli(ctx, nil, append([]string{"tail", "--brokers", brokersArg(c), "--topic", topic, "--kind", "events"}, args...)...)
			if r.err != nil {
				t.Fatalf("tail %v: %v\n%s", args, r.err, r.stderr)
			}
			var ids []string
			for _, l := range jsonLines(t, r.stdout) {
				id, _ := l["event_id"].(string)
				if id == "" {
					id, _ = l["key"].(string) // --raw
				}
				ids = append(ids, id)
			}
			return ids
		}
		for _, tc := range []struct {
			args []string
			want string // in partition order: tail's order within a partition is the offsets'
		}{
			{[]string{"--partition", "1", "--from-beginning", "--exit-at-end"}, "p1-0 p1-1 p1-2 p1-3 p1-4"},
			{[]string{"--partition", "1", "--partition", "0", "--offset", "beginning", "--exit-at-end"}, "p0-0 p0-1 p0-2 p0-3 p0-4 p1-0 p1-1 p1-2 p1-3 p1-4"},
			{[]string{"--offset", "-2", "--exit-at-end"}, "p0-3 p0-4 p1-3 p1-4"},
			{[]string{"--offset", "-9", "--partition", "0", "--exit-at-end"}, "p0-0 p0-1 p0-2 p0-3 p0-4"},
			{[]string{"--offset", "3", "--partition", "0", "--exit-at-end"}, "p0-3 p0-4"},
			{[]string{"--offset", "99", "--exit-at-end"}, ""},
			{[]string{"--offset", "end", "--exit-at-end"}, ""},
			{[]string{"--since", stamp(2).Format(time.RFC3339Nano), "--exit-at-end"}, "p0-2 p0-3 p0-4 p1-2 p1-3 p1-4"},
			{[]string{"--since", "1h", "--exit-at-end"}, "p0-3 p0-4 p1-3 p1-4"},
			{[]string{"--partition", "0", "--from-beginning", "--count", "3"}, "p0-0 p0-1 p0-2"}, // no --exit-at-end: --count ends it
			{[]string{"--partition", "1", "--offset", "4", "--count", "1"}, "p1-4"},
		} {
			got := tail(tc.args...)
			sortByPartition(got)
			if strings.Join(got, " ") != tc.want {
				t.Errorf("tail %s: %q, want %q", strings.Join(tc.args, " "), strings.Join(got, " "), tc.want)
			}
		}

		// --raw: the value's bytes as they are, not decoded.
		r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--raw", "--partition", "0", "--offset", "-1", "--exit-at-end")
		want := `{"kind":"raw","key":"p0-4","value_base64":"` + base64.StdEncoding.EncodeToString(values["p0-4"]) + `"}` + "\n"
		if r.err != nil || r.stdout != want {
			t.Errorf("tail --raw: %v\n%s\nwant\n%s", r.err, r.stdout, want)
		}
	})
}

// sortByPartition orders ids "pP-I" by partition, keeping each partition's
// order (tail interleaves partitions as fetches come).
func sortByPartition(ids []string) {
	var p0, p1 []string
	for _, id := range ids {
		if strings.HasPrefix(id, "p0-") {
			p0 = append(p0, id)
		} else {
			p1 = append(p1, id)
		}
	}
	copy(ids, append(p0, p1...))
}

func TestTailFlagErrors(t *testing.T) {
	clearEnv(t)
	checkLeaks(t)
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "t")
	c.CreateTopic(t, topic, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct{ args []string }{
		{[]string{"--offset", "middle"}},
		{[]string{"--offset", "3", "--from-beginning"}},
		{[]string{"--since", "yesterday"}},
		{[]string{"--since", "-5m"}},
		{[]string{"--since", "5m", "--offset", "beginning"}},
		{[]string{"--since", "5m", "--from-beginning"}},
		{[]string{"--count", "-1"}},
		{[]string{"--timeout", "0s"}},
		{[]string{"--schema-registry-timeout", "0s"}},
		{[]string{"--partition", "2"}},
	} {
		r := cli(ctx, nil, append([]string{"tail", "--brokers", brokersArg(c), "--topic", topic, "--exit-at-end"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.err.Error(), tc.args[0]) {
			t.Errorf("tail %v: exit code %d err %v, want 2 naming %s", tc.args, r.code, r.err, tc.args[0])
		}
	}
}

// TestTailKindMismatchAndDeadLetterHeaders: records of another kind than
// --kind are dead-letter lines that name the kind they look like, with a
// note on stderr; dead-letter lines keep the record's own headers.
func TestTailKindMismatchAndDeadLetterHeaders(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		status, dlq := kafkatest.Name(t, "status"), kafkatest.Name(t, "dlq")
		c.CreateTopic(t, status, 1, nil)
		c.CreateTopic(t, dlq, 1, nil)
		codec, err := avro.NewCodec()
		if err != nil {
			t.Fatal(err)
		}
		v, err := codec.EncodeStatusChange(nil, &avro.StatusChange{OrderID: "o1", EventID: "e1", EventType: "place_order", ToState: "placed", Version: 1,
			OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl := c.Client(t)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: status, Key: []byte("o1"), Value: v},
			&kgo.Record{Topic: dlq, Key: []byte("o2"), Value: []byte{1}, Headers: []kgo.RecordHeader{
				{Key: "trace", Value: []byte("t-1")},
				{Key: processor.HeaderError, Value: []byte("boom")}, {Key: processor.HeaderSourceTopic, Value: []byte("orders.events")},
				{Key: processor.HeaderSourcePartition, Value: []byte("0")}, {Key: processor.HeaderSourceOffset, Value: []byte("7")},
			}}).FirstErr(); err != nil {
			t.Fatal(err)
		}

		r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", status, "--kind", "events", "--from-beginning", "--exit-at-end")
		if r.err != nil {
			t.Fatalf("tail: %v", r.err)
		}
		lines := jsonLines(t, r.stdout)
		if len(lines) != 1 || lines[0]["kind"] != "dlq" || !strings.Contains(lines[0]["error"].(string), "looks like a record of kind status (give --kind status") {
			t.Errorf("a status record read as events: %s", r.stdout)
		}
		if !strings.Contains(r.stderr, "look like status records, not events: give --kind status") {
			t.Errorf("no note on stderr: %q", r.stderr)
		}

		r = cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", dlq, "--kind", "dlq", "--from-beginning", "--exit-at-end")
		want := `{"kind":"dlq","key":"o2","error":"boom","source_topic":"orders.events","source_partition":0,"source_offset":7,"value_base64":"AQ==","headers":{"trace":"t-1"}}` + "\n"
		if r.err != nil || r.stdout != want {
			t.Errorf("dead letter: %v\n%s\nwant\n%s", r.err, r.stdout, want)
		}
	})
}
