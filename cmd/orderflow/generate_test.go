package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
)

// TestGenerateWritesTheWorkload: generate writes the workload's events
// (the malformed records left out) as event lines, the same for the same
// seed.
func TestGenerateWritesTheWorkload(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	r := cli(ctx, nil, "generate", "--orders", "40", "--seed", "7")
	if r.err != nil {
		t.Fatalf("generate: %v\n%s", r.err, r.stderr)
	}
	var want []string
	malformed := 0
	for _, it := range workload.Generate(workload.Options{Seed: 7, Orders: 40}) {
		if it.Malformed != nil {
			malformed++
			continue
		}
		line, err := avro.EventToJSON(&it.Event)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, string(line))
	}
	if got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("generate wrote %d lines, not the workload's %d events", len(got), len(want))
	}
	orders := map[string]bool{}
	for i, l := range want {
		ev, err := avro.EventFromJSON([]byte(l))
		if err != nil {
			t.Fatalf("line %d does not parse as an event: %v", i+1, err)
		}
		orders[ev.OrderID] = true
	}
	if len(orders) < 40 {
		t.Errorf("%d orders, want at least the 40 asked for", len(orders))
	}
	if again := cli(ctx, nil, "generate", "--orders", "40", "--seed", "7"); again.stdout != r.stdout {
		t.Error("the same seed gave other lines")
	}
	if other := cli(ctx, nil, "generate", "--orders", "40", "--seed", "8"); other.stdout == r.stdout {
		t.Error("another seed gave the same lines")
	}
	// Paced output is the same lines.
	if paced := cli(ctx, nil, "generate", "--orders", "2", "--seed", "7", "--rate", "1000"); paced.err != nil ||
		paced.stdout != cli(ctx, nil, "generate", "--orders", "2", "--seed", "7").stdout {
		t.Errorf("--rate changed the lines: %v", paced.err)
	}
	for _, args := range [][]string{{"--orders", "0"}, {"--seed", "0"}, {"--rate", "-1"}} {
		if r := cli(ctx, nil, append([]string{"generate"}, args...)...); r.code != 2 || !strings.Contains(r.err.Error(), args[0]) {
			t.Errorf("generate %v: exit code %d err %v, want 2 naming the flag", args, r.code, r.err)
		}
	}
}

// TestGenerateProduceRun: `generate | produce` into a running `run`: every
// event has its transition or rejection and none is dead-lettered.
func TestGenerateProduceRun(t *testing.T) {
	clearEnv(t)
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		checkLeaks(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		names, ran, stop := runCLI(ctx, t, c)
		gen := cli(ctx, nil, "generate", "--orders", "25", "--seed", "3")
		if gen.err != nil {
			t.Fatalf("generate: %v", gen.err)
		}
		events := strings.Count(gen.stdout, "\n")
		if r := cli(ctx, strings.NewReader(gen.stdout), "produce", "--brokers", brokersArg(c), "--topic", names["events"]); r.err != nil {
			t.Fatalf("produce: %v\n%s", r.err, r.stderr)
		}
		var status, rejections, dlq int
		for status+rejections+dlq < events {
			select {
			case r := <-ran:
				t.Fatalf("run ended early: code %d err %v\n%s", r.code, r.err, r.stderr)
			case <-ctx.Done():
				t.Fatalf("%d transitions, %d rejections and %d dead letters of %d events", status, rejections, dlq, events)
			case <-time.After(200 * time.Millisecond):
			}
			status = len(c.ReadCommitted(t, names["status"]))
			rejections = len(c.ReadCommitted(t, names["rejections"]))
			dlq = len(c.ReadCommitted(t, names["dlq"]))
		}
		if dlq != 0 || status+rejections != events || status == 0 || rejections == 0 {
			t.Errorf("%d events gave %d transitions, %d rejections, %d dead letters; want every event processed, none dead-lettered",
				events, status, rejections, dlq)
		}
		stop()
	})
}
