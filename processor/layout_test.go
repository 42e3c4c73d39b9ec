package processor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// TestInputPartitionsAdded: partitions added to the input while an
// instance runs stop it within seconds with a layout error that points to
// repartition, before it commits any event routed by the new count: no
// event of an existing order is refused as unknown_order. Before, the
// instance went on for minutes (until its client refreshed its metadata),
// refusing such events for good.
func TestInputPartitionsAdded(t *testing.T) {
	c := kafkatest.Real(t)
	e := newEnv(t, c, 2)
	at := time.Now().Truncate(time.Millisecond)
	const orders = 200
	var placed, confirmed []workload.Item
	for i := range orders {
		id := fmt.Sprintf("o-%d", i)
		placed = append(placed, workload.Item{Key: id, Event: topology.Event{EventID: "p-" + id, OrderID: id, Type: "place_order", OccurredAt: at}})
		confirmed = append(confirmed, workload.Item{Key: id, Event: topology.Event{EventID: "c-" + id, OrderID: id, Type: "confirm_payment", OccurredAt: at.Add(time.Minute)}})
	}
	e.produce(t, placed)
	p, err := processor.New(e.instance(t, "a", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	e.waitOutputs(t, orders, time.Minute)

	adm := c.Admin(t)
	actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer acancel()
	if _, err := adm.CreatePartitions(actx, 2, e.cfg.Topics.Events); err != nil {
		t.Fatal(err)
	}
	if err := kafkatest.WaitTopic(actx, adm, e.cfg.Topics.Events, 4); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	e.produce(t, confirmed) // a new producer: it routes by 4 partitions
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30 s after the input got more partitions")
	}
	t.Logf("stopped %v after the partitions were added: %v", time.Since(added).Round(time.Millisecond), err)
	if !errors.Is(err, processor.ErrTopology) || !strings.Contains(err.Error(), "now has 4 partitions") || !strings.Contains(err.Error(), "orderflow repartition") {
		t.Fatalf("Run: %v; want a layout error that names the new count and repartition", err)
	}
	o := e.readOutputs(t)
	for _, it := range confirmed {
		for _, got := range o.byEvent[it.Event.EventID] {
			if got.String() != "->confirmed" {
				t.Errorf("%s (partition %d under 2 partitions): %v", it.Event.EventID, 0, got)
			}
		}
	}
}
