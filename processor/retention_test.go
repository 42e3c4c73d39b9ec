package processor_test

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// retentionInstance is an instance keeping closed orders an hour, swept
// every sweep, on a clock that runs offset ahead of the wall clock.
func retentionInstance(t *testing.T, e *env, sweep time.Duration) (processor.Config, *atomic.Int64) {
	offset := new(atomic.Int64)
	cfg := e.instance(t, "a", t.TempDir())
	cfg.Retention = time.Hour
	cfg.SweepInterval = sweep
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	return cfg, offset
}

// waitTombstones waits until app's changelog holds a tombstone for each of
// orders, and fails the test if some still have none after a minute.
func waitTombstones(t *testing.T, c *kafkatest.Cluster, app string, orders ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		left := map[string]bool{}
		for _, o := range orders {
			left[o] = true
		}
		for _, r := range c.ReadCommitted(t, processor.ChangelogTopic(app)) {
			if r.Value == nil {
				delete(left, string(r.Key))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d expired orders have no tombstone in the changelog a minute after their retention passed: %v",
				len(left), len(orders), slices.Sorted(maps.Keys(left)))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRetention closes an order, moves the processor's clock past the
// retention period, and checks that the sweep tombstones the order in the
// changelog and that a late event for it is then an unknown order.
func TestRetention(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 3)
		cfg, offset := retentionInstance(t, e, 200*time.Millisecond)

		// Dated now: kept-1 stays placed, whose 24h timer must not fall
		// due on the processor's clock (2h ahead) during the test.
		at := time.Now().UTC().Truncate(time.Millisecond)
		ev := func(id, order, typ string, attrs map[string]string) workload.Item {
			at = at.Add(time.Minute)
			return workload.Item{Key: order, Event: topology.Event{EventID: id, OrderID: order, Type: typ, OccurredAt: at, Attributes: attrs}}
		}
		closed := []workload.Item{
			ev("c1", "closed-1", "place_order", nil),
			ev("c2", "closed-1", "cancel_order", nil),
			ev("k1", "kept-1", "place_order", nil),
		}
		e.produce(t, closed)
		_, stop := run(t, cfg)
		e.waitOutputs(t, len(closed), time.Minute)

		offset.Store(int64(2 * time.Hour)) // closed-1 closed over an hour ago
		waitTombstones(t, c, cfg.AppID, "closed-1")
		late := []workload.Item{
			ev("c3", "closed-1", "confirm_payment", nil),
			ev("k2", "kept-1", "confirm_payment", nil),
		}
		e.produce(t, late)
		o := e.waitOutputs(t, len(closed)+len(late), time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := o.byEvent["c3"]; len(got) != 1 || got[0].reason != topology.ReasonUnknownOrder {
			t.Fatalf("late event for the expired order: %v, want one unknown_order rejection", got)
		}
		if got := o.byEvent["k2"]; len(got) != 1 || got[0].to != "confirmed" {
			t.Fatalf("event for the open order: %v, want a transition to confirmed", got)
		}
	})
}

// TestRetentionCatchesUp expires far more orders of a partition than one
// sweep deletes (SweepLimit 1): the sweep runs again in the next batch, not
// a SweepInterval later, until every expired order is tombstoned. 90 orders
// over 3 partitions put at least 30 in one, which sweeps 5 s apart would
// take 150 s to delete; the test allows 60 s.
func TestRetentionCatchesUp(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 3)
		cfg, offset := retentionInstance(t, e, 5*time.Second)
		cfg.SweepLimit = 1

		at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var items []workload.Item
		var orders []string
		for i := range 90 {
			order := fmt.Sprintf("order-%d", i)
			orders = append(orders, order)
			for _, typ := range []string{"place_order", "cancel_order"} {
				at = at.Add(time.Second)
				id := fmt.Sprintf("%s-%s", order, typ)
				items = append(items, workload.Item{Key: order, Event: topology.Event{EventID: id, OrderID: order, Type: typ, OccurredAt: at}})
			}
		}
		e.produce(t, items)
		_, stop := run(t, cfg)
		e.waitOutputs(t, len(items), time.Minute)

		offset.Store(int64(2 * time.Hour)) // every order closed over an hour ago
		waitTombstones(t, c, cfg.AppID, orders...)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}
