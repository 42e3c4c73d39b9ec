package processor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
)

// TestChangelogLost: a changelog deleted under a store that holds orders
// stops the next start (not recreated, nothing wiped), so does a changelog
// created again under the same name; the reseed writes the store's states
// to it, after which later events of existing orders are accepted as if the
// changelog had never gone, and the changelog holds every order's state.
func TestChangelogLost(t *testing.T) {
	c := kafkatest.Real(t)
	e := newEnv(t, c, 4)
	items := workload.Generate(workload.Options{Seed: 51, Orders: 400})
	half := len(items) / 2
	e.produce(t, items[:half])
	dir := t.TempDir()
	cfg := e.instance(t, "a", dir)
	_, stop := run(t, cfg)
	e.waitOutputs(t, half, 2*time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	changelog := processor.ChangelogTopic(cfg.AppID)
	deleteTopic(t, c, changelog)
	err := runBriefly(t, cfg)
	if !errors.Is(err, processor.ErrChangelogLost) || !errors.Is(err, processor.ErrTopology) {
		t.Fatalf("start after the changelog was deleted: Run = %v, want ErrChangelogLost", err)
	}
	for _, want := range []string{"does not exist", "Config.ReseedChangelog", "delete " + dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if exists(t, c, changelog) {
		t.Fatalf("the refused start created changelog %s", changelog)
	}

	c.CreateTopic(t, changelog, 4, kafkatest.CompactConfigs())
	err = runBriefly(t, cfg)
	if !errors.Is(err, processor.ErrChangelogLost) || !strings.Contains(err.Error(), "created again") {
		t.Fatalf("start after the changelog was created again: Run = %v, want ErrChangelogLost saying so", err)
	}

	reseed := cfg
	reseed.ReseedChangelog = true
	if err := runBriefly(t, reseed); err != nil {
		t.Fatalf("reseed: %v", err)
	}
	e.produce(t, items[half:])
	_, stop = run(t, cfg)
	e.waitOutputs(t, len(items), 2*time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, items, e.readOutputs(t))
	e.checkChangelog(t, items)
}

// runBriefly runs a processor that is expected to return by itself (a
// refusal, a reseed) and returns Run's error; one still running after a
// minute is stopped, and its nil is returned.
func runBriefly(t *testing.T, cfg processor.Config) error {
	t.Helper()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return p.Run(ctx)
}

// deleteTopic deletes topic and waits until the cluster no longer lists it.
func deleteTopic(t *testing.T, c *kafkatest.Cluster, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.Admin(t).DeleteTopic(ctx, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("deleting %s: %v", topic, err)
	}
	for exists(t, c, topic) {
		if ctx.Err() != nil {
			t.Fatalf("topic %s still listed a minute after its deletion", topic)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func exists(t *testing.T, c *kafkatest.Cluster, topic string) bool {
	t.Helper()
	td, err := c.Admin(t).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, ok := td[topic]
	return ok
}
