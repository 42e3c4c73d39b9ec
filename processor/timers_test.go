package processor_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// timersMachine cancels an order left unpaid for a day.
func timersMachine(t *testing.T) *topology.Machine {
	t.Helper()
	m, err := topology.Parse([]byte(`
initial: placed
events: [{name: place_order, creates: true}, confirm_payment]
states:
  - name: placed
    transitions:
      - {after: 24h, to: cancelled}
      - {event: confirm_payment, to: confirmed}
  - name: confirmed
    terminal: true
  - name: cancelled
    terminal: true
`))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// timerStatus reads the status records of fired timers, by order.
func (e *env) timerStatus(t *testing.T) map[string][]avro.StatusChange {
	t.Helper()
	out := map[string][]avro.StatusChange{}
	for _, r := range e.c.ReadCommitted(t, e.cfg.Topics.Status) {
		var sc avro.StatusChange
		if err := e.codec.DecodeStatusChange(r.Value, &sc); err != nil {
			t.Fatal(err)
		}
		if sc.Timer != nil {
			out[sc.OrderID] = append(out[sc.OrderID], sc)
		}
	}
	return out
}

// TestTimers: an order placed 25 hours ago and never paid is cancelled by
// its timer on the processor's clock, without any further event; an event
// that comes after a deadline meets the order already cancelled; a restore
// into an empty state directory rebuilds the due-time index, so a timer
// that falls due later fires once, and none fires twice.
func TestTimers(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 2)
		m := timersMachine(t)
		offset := new(atomic.Int64)
		cfg := e.instance(t, "a", t.TempDir())
		cfg.Machine = m
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }

		now := time.Now().UTC().Truncate(time.Millisecond)
		ev := func(id, order, typ string, at time.Time) workload.Item {
			return workload.Item{Key: order, Event: topology.Event{EventID: id, OrderID: order, Type: typ, OccurredAt: at}}
		}
		items := []workload.Item{
			ev("u1", "unpaid", "place_order", now.Add(-25*time.Hour)),
			ev("f1", "fresh", "place_order", now.Add(-time.Hour)),
			ev("p1", "paid", "place_order", now.Add(-48*time.Hour)),
			ev("p2", "paid", "confirm_payment", now.Add(-47*time.Hour)),
			ev("l1", "late", "place_order", now.Add(-30*time.Hour)),
			ev("l2", "late", "confirm_payment", now.Add(-5*time.Hour)),
		}
		e.produce(t, items)
		_, stop := run(t, cfg)
		// 6 events answered, and the timers of unpaid and late.
		o := e.waitOutputs(t, len(items)+2, time.Minute)
		if got := o.byEvent["l2"]; len(got) != 1 || got[0].reason != topology.ReasonTerminalState {
			t.Fatalf("payment after the deadline: %v, want a terminal_state rejection", got)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}

		// A new instance restores into an empty directory a day later:
		// fresh's timer is due now, and only it fires.
		offset.Store(int64(24 * time.Hour))
		cfg2 := e.instance(t, "b", t.TempDir())
		cfg2.Machine, cfg2.Now = m, cfg.Now
		_, stop = run(t, cfg2)
		e.waitOutputs(t, len(items)+3, time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}

		fired := e.timerStatus(t)
		for order, wantDue := range map[string]time.Time{
			"unpaid": now.Add(-time.Hour),
			"late":   now.Add(-6 * time.Hour),
			"fresh":  now.Add(23 * time.Hour),
		} {
			got := fired[order]
			if len(got) != 1 || got[0].ToState != "cancelled" || !got[0].OccurredAt.Equal(wantDue) ||
				*got[0].Timer != "placed after 24h" || got[0].EventType != avro.TimerEventType {
				t.Errorf("%s: fired %+v, want one cancellation due %v", order, got, wantDue)
			}
		}
		if len(fired["paid"]) != 0 {
			t.Errorf("paid: a timer fired after its state was left: %+v", fired["paid"])
		}

		// The changelog holds what replay --now gives at the clock's time.
		want := replayNow(m, items, time.Now().Add(24*time.Hour))
		got := e.changelogStates(t)
		for _, id := range slices.Sorted(func(yield func(string) bool) {
			for id := range want {
				if !yield(id) {
					return
				}
			}
		}) {
			w, g := want[id], got[id]
			if g == nil || g.State != w.State || g.Version != w.Version || !g.UpdatedAt.Equal(w.UpdatedAt) {
				t.Errorf("order %s: changelog %+v, replay --now %+v", id, g, w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("changelog has %d orders, replay %d", len(got), len(want))
		}
	})
}

// replayNow is `orderflow replay --now now` of items: the final states.
func replayNow(m *topology.Machine, items []workload.Item, now time.Time) map[string]*topology.State {
	states := map[string]*topology.State{}
	none := func(*topology.Timer, *topology.Outcome) {}
	for i := range items {
		ev := items[i].Event
		st := states[ev.OrderID]
		if st != nil {
			st = topology.FireDue(m, st, ev.OccurredAt, false, none)
			states[ev.OrderID] = st
		}
		if out := topology.Apply(m, st, &ev); out.Accepted {
			next := out.Next
			states[ev.OrderID] = &next
		}
	}
	for id, st := range states {
		states[id] = topology.FireDue(m, st, now, true, none)
	}
	return states
}

// changelogStates reads the changelog's last state of every order.
func (e *env) changelogStates(t *testing.T) map[string]*topology.State {
	t.Helper()
	got := map[string]*topology.State{}
	for _, r := range e.c.ReadCommitted(t, processor.ChangelogTopic(e.cfg.AppID)) {
		if r.Value == nil {
			delete(got, string(r.Key))
			continue
		}
		var st topology.State
		if err := e.codec.DecodeState(r.Value, &st); err != nil {
			t.Fatal(fmt.Errorf("changelog record of %s: %w", r.Key, err))
		}
		got[string(r.Key)] = &st
	}
	return got
}
