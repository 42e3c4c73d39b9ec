package processor_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceValues writes raw values to partition 0 of the events topic, in
// order, with a producer that takes records up to the broker's default
// limit (franz-go's own default is lower).
func (e *env) produceValues(t *testing.T, keys []string, values [][]byte) {
	t.Helper()
	cl := e.c.Client(t, kgo.DefaultProduceTopic(e.cfg.Topics.Events), kgo.ProducerBatchMaxBytes(1048588),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(keys[i]), Value: values[i]}).FirstErr(); err != nil {
			t.Fatalf("producing input %d (%d bytes): %v", i, len(values[i]), err)
		}
	}
}

func (e *env) encode(t *testing.T, ev topology.Event) []byte {
	t.Helper()
	v, err := e.codec.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	e.sent[ev.EventID] = nil
	return v
}

// TestOversizedDeadLetter: an undecodable input record almost as large as
// the broker takes cannot be dead-lettered whole (the dead letter adds
// headers): it is dead-lettered without its value, which the headers point
// to, and the events around it are processed. Before, the refused dead
// letter did not stop the transaction from committing: the input offset
// moved past the record, which had no outcome.
func TestOversizedDeadLetter(t *testing.T) {
	for _, g := range []processor.Guarantee{processor.ExactlyOnce, processor.AtLeastOnce} {
		t.Run(string(g), func(t *testing.T) {
			c := kafkatest.Real(t)
			e := newEnv(t, c, 1)
			at := time.Now().Truncate(time.Millisecond)
			garbage := bytes.Repeat([]byte{0xff}, 1048400)
			e.produceValues(t, []string{"o-d1", "o-d2", "o-d3"}, [][]byte{
				e.encode(t, topology.Event{EventID: "d1", OrderID: "o-d1", Type: "place_order", OccurredAt: at}),
				garbage,
				e.encode(t, topology.Event{EventID: "d3", OrderID: "o-d3", Type: "place_order", OccurredAt: at}),
			})
			cfg := e.instance(t, "a", t.TempDir())
			cfg.Guarantee = g
			_, stop := run(t, cfg)
			o := e.waitOutputs(t, 3, time.Minute)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if fmt.Sprint(o.byEvent["d1"], o.byEvent["d3"]) != "[->placed] [->placed]" || len(o.dlq) != 1 || o.total != 3 {
				t.Fatalf("outcomes: d1 %v, d3 %v, %d dead letters, %d in all; want one each", o.byEvent["d1"], o.byEvent["d3"], len(o.dlq), o.total)
			}
			dl := o.dlq[0]
			h := headerMap(dl)
			if string(dl.Key) != "o-d2" || len(dl.Value) != 0 || h[processor.HeaderSourceOffset] != "1" ||
				!strings.Contains(h[processor.HeaderOmitted], "value (1048400 bytes)") || h[processor.HeaderError] == "" {
				t.Fatalf("dead letter: key %q, %d value bytes, headers %v", dl.Key, len(dl.Value), h)
			}
		})
	}
}

// TestStateTooLarge: with a changelog that takes small records, an order
// whose state outgrows it gets state_too_large rejections and keeps its
// last state that fits; every event has one outcome, and the changelog's
// state is replay's of the events that were accepted. Before, the refused
// changelog record did not stop the transaction from committing (and the
// instance then stopped): the state in the store and the changelog
// disagreed, and later events had no outcome.
func TestStateTooLarge(t *testing.T) {
	for _, g := range []processor.Guarantee{processor.ExactlyOnce, processor.AtLeastOnce} {
		t.Run(string(g), func(t *testing.T) {
			c := kafkatest.Real(t)
			e := newEnv(t, c, 1)
			changelog := processor.ChangelogTopic(e.cfg.AppID)
			setTopicConfig(t, c, changelog, "max.message.bytes", "4096")
			// An order held and released again and again: every accepted
			// event adds its ID to the state's recent IDs.
			at := time.Now().Truncate(time.Millisecond)
			pad := strings.Repeat("x", 200)
			items := []workload.Item{{Key: "o-1", Event: topology.Event{EventID: "e00-" + pad, OrderID: "o-1", Type: "place_order", OccurredAt: at}}}
			for i := 1; i < 40; i++ {
				typ := "hold_order"
				if i%2 == 0 {
					typ = "release_hold"
				}
				items = append(items, workload.Item{Key: "o-1", Event: topology.Event{
					EventID: fmt.Sprintf("e%02d-%s", i, pad), OrderID: "o-1", Type: typ, OccurredAt: at.Add(time.Duration(i) * time.Second)}})
			}
			e.produce(t, items)
			cfg := e.instance(t, "a", t.TempDir())
			cfg.Guarantee = g
			_, stop := run(t, cfg)
			o := e.waitOutputs(t, len(items), time.Minute)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var accepted []workload.Item
			tooLarge := 0
			for _, it := range items {
				got := o.byEvent[it.Event.EventID]
				if len(got) != 1 {
					t.Fatalf("event %.3s: outcomes %v, want one", it.Event.EventID, got)
				}
				switch {
				case got[0].kind == "transition":
					accepted = append(accepted, it)
				case got[0].reason == topology.ReasonStateTooLarge:
					tooLarge++
				}
			}
			if tooLarge == 0 || len(accepted) < 2 {
				t.Fatalf("%d accepted, %d state_too_large: want both", len(accepted), tooLarge)
			}
			// The changelog holds replay's state of the accepted events.
			e.checkChangelog(t, accepted)
			for _, r := range c.ReadCommitted(t, changelog) {
				if n := len(r.Value) + len(r.Key); n > 4096 {
					t.Fatalf("changelog record of %d bytes, over the topic's limit", n)
				}
			}
		})
	}
}

// setTopicConfig sets one config of a topic.
func setTopicConfig(t *testing.T, c *kafkatest.Cluster, topic, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Admin(t).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = resp.On(topic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		t.Fatalf("setting %s=%s on %s: %v", key, value, topic, err)
	}
}

// gauge reads a gauge of the processor's metrics.
func gauge(t *testing.T, p *processor.Processor, name string) float64 {
	t.Helper()
	mfs, err := p.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestStalledPartitionNotReady: a partition whose batches keep failing (its
// status topic refuses their records: their timestamps, the inputs', are
// older than message.timestamp.before.max.ms allows) makes the instance not ready, and counts in
// orderflow_stalled_partitions, until the cause is gone; then its events
// are processed once each and the instance is ready again. Before, the
// instance said it was ready all along.
func TestStalledPartitionNotReady(t *testing.T) {
	c := kafkatest.Real(t)
	e := newEnv(t, c, 1)
	setTopicConfig(t, c, e.cfg.Topics.Status, "message.timestamp.before.max.ms", "60000")
	items := workload.Generate(workload.Options{Seed: 5, Orders: 20})
	e.produce(t, items)
	cfg := e.instance(t, "a", t.TempDir())
	cfg.TransactionTimeout = 2 * time.Second
	p, stop := run(t, cfg)
	// A batch whose records all end as rejections (the rejections topic
	// takes old timestamps) commits and ends a stall, so on a slow machine
	// the partition can leave and re-enter the stalled state between two
	// reads: wait for one moment where Stalled and both gauges agree.
	deadline := time.Now().Add(2 * time.Minute)
	for p.Ready() || len(p.Stalled()) == 0 ||
		gauge(t, p, "orderflow_stalled_partitions") != 1 || gauge(t, p, "orderflow_ready") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not seen stalled after 2 minutes of failing batches: ready %v, stalled %v, orderflow_stalled_partitions %v, orderflow_ready %v",
				p.Ready(), p.Stalled(), gauge(t, p, "orderflow_stalled_partitions"), gauge(t, p, "orderflow_ready"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	setTopicConfig(t, c, e.cfg.Topics.Status, "message.timestamp.before.max.ms", "9223372036854775807")
	o := e.waitOutputs(t, len(items), 2*time.Minute)
	for !p.Ready() {
		if time.Now().After(deadline.Add(2 * time.Minute)) {
			t.Fatalf("not ready again (stalled %v) after its batches commit", p.Stalled())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkExactlyOnce(t, items, o)
}
