package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/topology"
)

// limitEvent is an event at or over one of the avro package's limits, as
// the processor reads it (ev, Avro) and as replay reads it (line, JSON).
type limitEvent struct {
	name string
	ev   topology.Event
	line string
	want error // nil: the event is processed (a place_order, so a transition)
}

func limitEvents(t *testing.T) []limitEvent {
	t.Helper()
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	place := func(id, order string) topology.Event {
		return topology.Event{EventID: id, OrderID: order, Type: "place_order", OccurredAt: at}
	}
	many := map[string]string{}
	for i := range avro.MaxAttributes + 1 {
		many[string(rune('a'+i%26))+strings.Repeat("k", i/26+1)] = "v"
	}
	cases := []limitEvent{
		{name: "in limits at every edge", ev: topology.Event{
			EventID: long("e", avro.MaxIDBytes), OrderID: long("o", avro.MaxIDBytes), Type: "place_order",
			OccurredAt: time.UnixMilli(avro.MaxOccurredAtMillis).UTC(),
		}},
		{name: "event_id of 400,000 bytes", ev: place(long("e", 400_000), "o-id"), want: avro.ErrFieldLimit},
		{name: "order_id over", ev: place("e-order", long("o", avro.MaxIDBytes+1)), want: avro.ErrFieldLimit},
		{name: "attributes over", ev: func() topology.Event { e := place("e-attrs", "o-attrs"); e.Attributes = many; return e }(), want: avro.ErrFieldLimit},
		{name: "year 0", ev: func() topology.Event {
			e := place("e-year0", "o-year0")
			e.OccurredAt = time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC)
			return e
		}(), want: avro.ErrTimeRange},
		{name: "year 10000 (written with an offset)", ev: func() topology.Event {
			e := place("e-year10000", "o-year10000")
			e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			return e
		}(), line: `{"event_id":"e-year10000","order_id":"o-year10000","type":"place_order","occurred_at":"9999-12-31T23:00:00-01:00"}`, want: avro.ErrTimeRange},
	}
	for i := range cases {
		if cases[i].line != "" {
			continue
		}
		b, err := avro.EventToJSON(&cases[i].ev)
		if err != nil {
			t.Fatal(err)
		}
		cases[i].line = string(b)
	}
	return cases
}

// verdict is the part of a decode error that says which limit an event is
// over: the same text whichever decoder (Avro or JSON) found it.
func verdict(t *testing.T, err error, want error) string {
	t.Helper()
	s := err.Error()
	i := strings.Index(s, want.Error()+": ")
	if i < 0 {
		t.Fatalf("error %q does not say %q", s, want)
	}
	return s[i:]
}

// TestReplayEventLimitsMatchDecoder: replay refuses every event the
// processor's decoder refuses for its limits, with the same reason, and
// accepts the events at the limits.
func TestReplayEventLimitsMatchDecoder(t *testing.T) {
	codec, err := avro.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	cases := limitEvents(t)
	var in strings.Builder
	for _, c := range cases {
		in.WriteString(c.line + "\n")
	}
	out, err, code := runCmd(t, in.String(), "replay")
	if err != nil || code != 0 {
		t.Fatalf("replay: err %v code %d", err, code)
	}
	lines := jsonLines(t, out)
	if len(lines) != len(cases) {
		t.Fatalf("%d output lines for %d events:\n%s", len(lines), len(cases), out)
	}
	for i, c := range cases {
		b, err := codec.EncodeEvent(nil, &c.ev)
		if err != nil {
			t.Fatal(err)
		}
		var ev topology.Event
		derr := codec.DecodeEventShared(b, &ev) // as the processor decodes
		got := lines[i]
		if c.want == nil {
			if derr != nil || got["kind"] != "transition" {
				t.Errorf("%s: decoder %v, replay %v; want both to take it", c.name, derr, got)
			}
			continue
		}
		if !errors.Is(derr, c.want) || !errors.Is(derr, avro.ErrMalformed) {
			t.Fatalf("%s: decoder: %v, want %v (a dead letter)", c.name, derr, c.want)
		}
		msg, _ := got["error"].(string)
		if got["kind"] != "dlq" || msg == "" {
			t.Fatalf("%s: replay printed %v, want a dlq line", c.name, got)
		}
		if want := verdict(t, derr, c.want); verdict(t, errors.New(msg), c.want) != want {
			t.Errorf("%s: replay says %q, the decoder %q", c.name, msg, want)
		}
		if len(msg) > 300 {
			t.Errorf("%s: the error repeats the input (%d bytes)", c.name, len(msg))
		}
	}
}

// TestRunDeadLettersEventsOverLimits: `run` dead-letters the records the
// limits refuse, with the reason replay gives for the same events, and
// processes the event at the limits.
func TestRunDeadLettersEventsOverLimits(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		names, ran, stop := runCLI(ctx, t, c)
		// The records are written as a producer other than `produce` would
		// (produce refuses such lines): Avro, keyed by order_id.
		codec, err := avro.NewCodec()
		if err != nil {
			t.Fatal(err)
		}
		cases := limitEvents(t)
		cl := c.Client(t, kgo.DefaultProduceTopic(names["events"]), kgo.ProducerBatchMaxBytes(1<<20))
		var replayIn strings.Builder
		wantDLQ := map[string]error{}
		for _, lc := range cases {
			v, err := codec.EncodeEvent(nil, &lc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(lc.ev.OrderID), Value: v}).FirstErr(); err != nil {
				t.Fatalf("%s: produce: %v", lc.name, err)
			}
			replayIn.WriteString(lc.line + "\n")
			if lc.want != nil {
				wantDLQ[lc.ev.OrderID] = lc.want
			}
		}

		tail := func(topic string) []map[string]any {
			r := cli(ctx, nil, "tail", "--brokers", brokersArg(c), "--topic", topic, "--from-beginning", "--exit-at-end")
			if r.err != nil {
				t.Fatalf("tail: %v", r.err)
			}
			return jsonLines(t, r.stdout)
		}
		var dlq, status []map[string]any
		for ctx.Err() == nil {
			if dlq, status = tail(names["dlq"]), tail(names["status"]); len(dlq)+len(status) >= len(cases) { // every event has its outcome
				break
			}
			select {
			case r := <-ran:
				t.Fatalf("run ended early: %+v", r)
			case <-time.After(200 * time.Millisecond):
			}
		}
		replayOut, err, code := runCmd(t, replayIn.String(), "replay")
		if err != nil || code != 0 {
			t.Fatalf("replay: err %v code %d", err, code)
		}
		replayed := map[string]string{} // by event: replay lines are in input order
		for i, l := range jsonLines(t, replayOut) {
			msg, _ := l["error"].(string)
			replayed[cases[i].ev.OrderID] = msg
		}
		if len(dlq) != len(wantDLQ) {
			t.Fatalf("%d dead letters, want %d: %v", len(dlq), len(wantDLQ), dlq)
		}
		for _, d := range dlq {
			key, _ := d["key"].(string)
			msg, _ := d["error"].(string)
			want, ok := wantDLQ[key]
			if !ok {
				t.Errorf("dead letter of an event within the limits: %v", d)
				continue
			}
			if got, rep := verdict(t, errors.New(msg), want), verdict(t, errors.New(replayed[key]), want); got != rep {
				t.Errorf("order %.20s...: the processor says %q, replay %q", key, got, rep)
			}
		}

		if len(status) != 1 || status[0]["order_id"] != cases[0].ev.OrderID {
			t.Errorf("transitions %v, want one, of the event at the limits", status)
		}

		stop()
	})
}
