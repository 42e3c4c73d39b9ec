package processor_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// censusYAML has an open state with a timer (placed), one without
// (confirmed) and two terminal states.
const censusYAML = `
initial: placed
events: [{name: place_order, creates: true}, confirm_payment, ship_order]
states:
  - name: placed
    transitions:
      - {after: 24h, to: cancelled}
      - {event: confirm_payment, to: confirmed}
  - name: confirmed
    transitions:
      - {event: ship_order, to: shipped}
  - name: shipped
    terminal: true
  - name: cancelled
    terminal: true
`

// gauges returns the processor's gauges named name by the value of label
// (and of label2, when given: "label/label2").
func gauges(t *testing.T, g prometheus.Gatherer, name string, labels ...string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var key []string
			for _, want := range labels {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == want {
						key = append(key, lp.GetValue())
					}
				}
			}
			out[strings.Join(key, "/")] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestOpenOrdersAndPendingTimers: the open orders by state, those older
// than an age, and the orders with a pending timer, as StatesCount and the
// gauges give them, follow the committed states (events and fired timers),
// leave closed orders out, and are rebuilt by a restore into an empty state
// directory.
func TestOpenOrdersAndPendingTimers(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 2)
		m, err := topology.Parse([]byte(censusYAML))
		if err != nil {
			t.Fatal(err)
		}
		offset := new(atomic.Int64)
		clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		now := time.Now().UTC().Truncate(time.Millisecond)
		ev := func(id, order, typ string, ago time.Duration) workload.Item {
			return workload.Item{Key: order, Event: topology.Event{EventID: id, OrderID: order, Type: typ, OccurredAt: now.Add(-ago)}}
		}
		items := []workload.Item{
			ev("a1", "a", "place_order", 2*time.Hour),      // placed for 2h: timer pending
			ev("b1", "b", "place_order", 30*time.Minute),   // placed for 30m: timer pending
			ev("c1", "c", "place_order", 3*time.Hour),      //
			ev("c2", "c", "confirm_payment", 2*time.Hour),  // confirmed for 2h
			ev("d1", "d", "place_order", 50*time.Hour),     //
			ev("d2", "d", "confirm_payment", 49*time.Hour), //
			ev("d3", "d", "ship_order", 48*time.Hour),      // closed
			ev("e1", "e", "place_order", 25*time.Hour),     // cancelled by the clock: closed
		}
		e.produce(t, items)

		check := func(p *processor.Processor, olderThan time.Duration, want map[string][2]int64, pending float64) {
			t.Helper()
			got := map[string][2]int64{}
			for _, sc := range p.StatesCount(olderThan) {
				got[sc.State] = [2]int64{sc.Orders, sc.Older}
				if sc.Timer != (sc.State == "placed") {
					t.Errorf("state %s: Timer %v", sc.State, sc.Timer)
				}
			}
			if len(got) != len(want) {
				t.Errorf("StatesCount(%v) lists %v, want the open states %v", olderThan, got, want)
			}
			for s, w := range want {
				if got[s] != w {
					t.Errorf("StatesCount(%v)[%s] = %v orders/older, want %v", olderThan, s, got[s], w)
				}
			}
			open := gauges(t, p.Gatherer(), "orderflow_open_orders", "state")
			for s, w := range want {
				if open[s] != float64(w[0]) {
					t.Errorf("orderflow_open_orders{state=%q} = %v, want %v", s, open[s], w[0])
				}
			}
			if len(open) != len(want) {
				t.Errorf("orderflow_open_orders: %v, want the open states only", open)
			}
			if g := gauges(t, p.Gatherer(), "orderflow_timers_pending"); g[""] != pending {
				t.Errorf("orderflow_timers_pending = %v, want %v", g[""], pending)
			}
		}

		cfg := e.instance(t, "a", t.TempDir())
		cfg.Machine, cfg.Now = m, clock
		p, stop := run(t, cfg)
		e.waitOutputs(t, len(items)+1, time.Minute) // and e's timer
		// The counts follow the store, which a batch writes after its
		// transaction commits.
		eventually(t, 30*time.Second, "e's timer counted", func() bool {
			return gauges(t, p.Gatherer(), "orderflow_timers_pending")[""] == 2
		})
		check(p, 90*time.Minute, map[string][2]int64{"placed": {2, 1}, "confirmed": {1, 1}}, 2)
		check(p, 0, map[string][2]int64{"placed": {2, 2}, "confirmed": {1, 1}}, 2)
		older := gauges(t, p.Gatherer(), "orderflow_open_orders_older", "state", "older_than")
		for k, w := range map[string]float64{"placed/1h": 1, "placed/24h": 0, "confirmed/1h": 1, "confirmed/7d": 0} {
			if older[k] != w {
				t.Errorf("orderflow_open_orders_older{%s} = %v, want %v (all: %v)", k, older[k], w, older)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}

		// 23 hours later, into an empty directory: a's timer (due in 22h)
		// has fired, b's (due in 23.5h) has not; c has been confirmed 25h.
		offset.Store(int64(23 * time.Hour))
		cfg2 := e.instance(t, "b", t.TempDir())
		cfg2.Machine, cfg2.Now = m, clock
		p2, stop := run(t, cfg2)
		e.waitOutputs(t, len(items)+2, time.Minute)
		eventually(t, 30*time.Second, "a's timer counted", func() bool {
			return gauges(t, p2.Gatherer(), "orderflow_timers_pending")[""] == 1
		})
		check(p2, 24*time.Hour, map[string][2]int64{"placed": {1, 0}, "confirmed": {1, 1}}, 1)
		check(p2, time.Hour, map[string][2]int64{"placed": {1, 1}, "confirmed": {1, 1}}, 1)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// eventually waits up to d for cond, polling.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
