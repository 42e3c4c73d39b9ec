package processor_test

import (
	"fmt"
	"math/rand/v2"
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

// timersYAML is a machine that cancels an order left unpaid for a day.
const timersYAML = `
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
`

func timersMachine(t *testing.T) *topology.Machine {
	t.Helper()
	m, err := topology.Parse([]byte(timersYAML))
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
		got := e.changelogStates(t, processor.ChangelogTopic(e.cfg.AppID))
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
func (e *env) changelogStates(t *testing.T, topic string) map[string]*topology.State {
	t.Helper()
	got := map[string]*topology.State{}
	for _, r := range e.c.ReadCommitted(t, topic) {
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

// TestTimersUnderCrashes: timers fall due on the wall clock while an
// instance is SIGKILLed and restarted and partitions move between it and a
// second instance: each fires exactly once (one status change per order and
// entry), and the changelog equals replay --now of the input.
func TestTimersUnderCrashes(t *testing.T) {
	realOnly(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 4)
		e.machine = timersYAML
		m := timersMachine(t)
		const orders, spread = 400, 24 * time.Second
		// Order i's timer falls due spread*i/orders after t0 (but see
		// below); every third order is paid in time, every third pays a
		// millisecond late (its timer fires first, by the event or by the
		// clock: the same).
		t0 := time.Now().Add(6 * time.Second).UTC().Truncate(time.Millisecond)
		var items []workload.Item
		unpaid := 0 // orders whose timer fires
		for i := range orders {
			id := fmt.Sprintf("t%03d", i)
			placed := t0.Add(-24*time.Hour + spread*time.Duration(i)/orders)
			if i%3 == 1 {
				// Paid in time, and due long after the test: a payment the
				// processor reads only after the wall clock passed the
				// deadline (it was down) would meet a cancelled order.
				placed = t0.Add(-time.Hour)
			}
			items = append(items, workload.Item{Key: id, Event: topology.Event{EventID: id + "-p", OrderID: id, Type: "place_order", OccurredAt: placed}})
			if i%3 != 1 {
				unpaid++
			}
			switch i % 3 {
			case 1:
				items = append(items, workload.Item{Key: id, Event: topology.Event{EventID: id + "-c", OrderID: id, Type: "confirm_payment", OccurredAt: placed.Add(time.Hour)}})
			case 2:
				items = append(items, workload.Item{Key: id, Event: topology.Event{EventID: id + "-c", OrderID: id, Type: "confirm_payment", OccurredAt: placed.Add(24*time.Hour + time.Millisecond)}})
			}
		}
		produced := e.produceSlowly(t, items, spread)
		steady := e.startChild(t, "steady", t.TempDir(), processor.ExactlyOnce)
		dir := t.TempDir()
		rng := rand.New(rand.NewPCG(9, 10))
		adm := c.Admin(t)
		var at int64
		for i := 0; i < 3; i++ {
			ch := e.startChild(t, "crashy", dir, processor.ExactlyOnce)
			at = e.killBusy(t, ch, adm, rng, at)
			t.Logf("SIGKILL %d at %d committed input records", i+1, at)
		}
		<-produced
		for time.Now().Before(t0.Add(spread + time.Second)) {
			time.Sleep(100 * time.Millisecond)
		}
		want := replayNow(m, items, time.Now())
		timers := 0
		for _, st := range want {
			if st.State == "cancelled" {
				timers++
			}
		}
		if timers != unpaid {
			t.Fatalf("the test's input makes %d timers fire, want %d", timers, unpaid)
		}
		ch := e.startChild(t, "crashy", dir, processor.ExactlyOnce)
		e.waitOutputs(t, len(items)+timers, 90*time.Second, ch, steady)
		ch.term(t)
		steady.term(t)

		fired := e.timerStatus(t)
		for id, st := range want {
			n := len(fired[id])
			if st.State == "cancelled" && n != 1 || st.State != "cancelled" && n != 0 {
				t.Errorf("order %s (%s): its timer fired %d times", id, st.State, n)
			}
		}
		got := e.changelogStates(t, processor.ChangelogTopic(e.cfg.AppID))
		for id, w := range want {
			g := got[id]
			if g == nil || g.State != w.State || g.Version != w.Version || !g.UpdatedAt.Equal(w.UpdatedAt) {
				t.Errorf("order %s: changelog %+v, replay --now %+v", id, g, w)
			}
		}
	})
}
