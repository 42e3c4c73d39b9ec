package processor_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/testutil"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kgo"
)

// env is one test's topics on one cluster.
type env struct {
	c     *kafkatest.Cluster
	cfg   processor.Config // base config: topics, app id, brokers
	codec *avro.Codec
	// sent holds the timestamps (Unix ms) of the input records of each
	// event id (a duplicated event has two).
	sent map[string][]int64
	// machine is the YAML of the machine children run ("": the default).
	machine string
	// standby and recoveryLag are the Config.StandbyReplicas and
	// Config.AcceptableRecoveryLag of the children.
	standby     int
	recoveryLag int64
}

func newEnv(t *testing.T, c *kafkatest.Cluster, partitions int32) *env {
	t.Helper()
	cfg := testConfig(t, c, partitions)
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{c: c, cfg: cfg, codec: codec, sent: map[string][]int64{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := processor.EnsureTopics(ctx, c.Admin(t), cfg); err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{cfg.Topics.Events, processor.ChangelogTopic(cfg.AppID)} {
		if err := kafkatest.WaitTopic(ctx, c.Admin(t), tp, partitions); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// testConfig is the base config of a new application on c, with unique
// topics, that creates them with the given partitions.
func testConfig(t *testing.T, c *kafkatest.Cluster, partitions int32) processor.Config {
	cfg := testutil.AppConfig(t, c, partitions)
	cfg.TransactionTimeout = 10 * time.Second
	return cfg
}

// instance returns a config for one processor instance.
func (e *env) instance(t *testing.T, name, stateDir string) processor.Config {
	cfg := e.cfg
	cfg.InstanceID = name
	cfg.StateDir = stateDir
	return cfg
}

// produce writes the items to the events topic, keyed by order id.
func (e *env) produce(t *testing.T, items []workload.Item) {
	t.Helper()
	cl := e.c.Client(t, kgo.DefaultProduceTopic(e.cfg.Topics.Events), kgo.ProducerLinger(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var perr error
	// Distinct timestamps in the recent past: the outputs must carry them.
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	for i := range items {
		it := &items[i]
		ts := base + int64(i)
		val := it.Malformed
		if val == nil {
			var err error
			if val, err = e.codec.EncodeEvent(nil, &it.Event); err != nil {
				t.Fatal(err)
			}
			e.sent[it.Event.EventID] = append(e.sent[it.Event.EventID], ts)
		}
		cl.Produce(ctx, &kgo.Record{Key: []byte(it.Key), Value: val, Timestamp: time.UnixMilli(ts)}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		t.Fatal(perr)
	}
}

// run starts a processor; stop cancels it and returns Run's error.
func run(t *testing.T, cfg processor.Config) (p *processor.Processor, stop func() error) {
	t.Helper()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, testutil.Background(t, "processor", p.Run)
}

// outcome is what the outputs say about one input event.
type outcome struct {
	kind   string // transition | rejection
	to     string // transition: new state
	reason string // rejection: reason
}

func (o outcome) String() string {
	if o.kind == "transition" {
		return "->" + o.to
	}
	return "rejected:" + o.reason
}

// replay computes the expected outcome of every event, by event id, and
// the final state of every order, as `orderflow replay` does.
func replay(items []workload.Item) (map[string][]outcome, map[string]*topology.State) {
	m := topology.Default()
	states := map[string]*topology.State{}
	want := map[string][]outcome{}
	for i := range items {
		if items[i].Malformed != nil {
			continue
		}
		ev := items[i].Event
		out := topology.Apply(m, states[ev.OrderID], &ev)
		if out.Accepted {
			next := out.Next
			states[ev.OrderID] = &next
			want[ev.EventID] = append(want[ev.EventID], outcome{kind: "transition", to: out.To})
		} else {
			want[ev.EventID] = append(want[ev.EventID], outcome{kind: "rejection", reason: out.Reason})
		}
	}
	return want, states
}

// outputs reads the committed outputs.
type outputs struct {
	byEvent map[string][]outcome
	times   map[string][]int64 // timestamps (Unix ms) of each event id's status and rejection records
	dlq     []*kgo.Record
	total   int
}

func (e *env) readOutputs(t *testing.T) outputs {
	t.Helper()
	o := outputs{byEvent: map[string][]outcome{}, times: map[string][]int64{}}
	for _, r := range e.c.ReadCommitted(t, e.cfg.Topics.Status) {
		var sc avro.StatusChange
		if err := e.codec.DecodeStatusChange(r.Value, &sc); err != nil {
			t.Fatalf("status record at %d/%d: %v", r.Partition, r.Offset, err)
		}
		o.byEvent[sc.EventID] = append(o.byEvent[sc.EventID], outcome{kind: "transition", to: sc.ToState})
		o.times[sc.EventID] = append(o.times[sc.EventID], r.Timestamp.UnixMilli())
		o.total++
	}
	for _, r := range e.c.ReadCommitted(t, e.cfg.Topics.Rejections) {
		var rj avro.Rejection
		if err := e.codec.DecodeRejection(r.Value, &rj); err != nil {
			t.Fatalf("rejection record at %d/%d: %v", r.Partition, r.Offset, err)
		}
		o.byEvent[rj.EventID] = append(o.byEvent[rj.EventID], outcome{kind: "rejection", reason: rj.Reason})
		o.times[rj.EventID] = append(o.times[rj.EventID], r.Timestamp.UnixMilli())
		o.total++
	}
	o.dlq = e.c.ReadCommitted(t, e.cfg.Topics.DLQ)
	o.total += len(o.dlq)
	return o
}

// checkTimestamps checks that every status and rejection record carries the
// timestamp of the input record it answers.
func (e *env) checkTimestamps(t *testing.T, o outputs) {
	t.Helper()
	bad := 0
	for id, times := range o.times {
		for _, ts := range times {
			if !slices.Contains(e.sent[id], ts) {
				if bad++; bad <= 5 {
					t.Errorf("event %s: an output has timestamp %d, the inputs %v", id, ts, e.sent[id])
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d outputs without their input's timestamp", bad)
	}
}

// waitOutputs waits until the outputs hold at least n records.
func (e *env) waitOutputs(t *testing.T, n int, timeout time.Duration, logs ...*child) outputs {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		o := e.readOutputs(t)
		if o.total >= n {
			return o
		}
		if time.Now().After(deadline) {
			for _, c := range logs {
				c.dump()
				t.Logf("log of %s:\n%s", c.name, tail(c.log, 150))
			}
			t.Fatalf("only %d of %d outputs after %v", o.total, n, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkExactlyOnce compares outputs with replay: every event has exactly
// its expected outcome(s), and every malformed record is in the DLQ once.
func checkExactlyOnce(t *testing.T, items []workload.Item, o outputs) {
	t.Helper()
	want, _ := replay(items)
	malformed := 0
	for _, it := range items {
		if it.Malformed != nil {
			malformed++
		}
	}
	var bad []string
	for id, w := range want {
		if fmt.Sprint(w) != fmt.Sprint(o.byEvent[id]) {
			bad = append(bad, fmt.Sprintf("%s: want %v, got %v", id, w, o.byEvent[id]))
		}
	}
	for id, g := range o.byEvent {
		if _, ok := want[id]; !ok {
			bad = append(bad, fmt.Sprintf("%s: unexpected outputs %v", id, g))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("%d events with wrong outcomes, e.g.:\n%v", len(bad), bad[:min(10, len(bad))])
	}
	if len(o.dlq) != malformed {
		t.Fatalf("%d dead letters, want %d", len(o.dlq), malformed)
	}
}

// checkChangelog compares the changelog's final state per order with replay.
func (e *env) checkChangelog(t *testing.T, items []workload.Item) {
	t.Helper()
	e.checkChangelogTopic(t, items, processor.ChangelogTopic(e.cfg.AppID))
}

// checkChangelogTopic compares the final state per order in changelog topic
// with replay.
func (e *env) checkChangelogTopic(t *testing.T, items []workload.Item, topic string) {
	t.Helper()
	_, states := replay(items)
	got := e.changelogStates(t, topic)
	if len(got) != len(states) {
		t.Fatalf("changelog has %d orders, replay %d", len(got), len(states))
	}
	for id, w := range states {
		g := got[id]
		if g == nil || g.State != w.State || g.Version != w.Version || !g.UpdatedAt.Equal(w.UpdatedAt) {
			t.Fatalf("order %s: changelog %+v, replay %+v", id, g, w)
		}
	}
}

func headerMap(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

var _ = strconv.Itoa

// realOnly runs a test that SIGKILLs group members on the real broker only.
// kfake (pinned pseudo-version) can leave a SyncGroup waiting forever when a
// member dies mid-rebalance (seen as a child stuck in joinAndSync), so these
// guarantees are proven where they matter: on Apache Kafka.
func realOnly(t *testing.T, fn func(t *testing.T, c *kafkatest.Cluster)) {
	fn(t, kafkatest.Real(t))
}
