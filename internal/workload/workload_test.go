package workload

import (
	"reflect"
	"testing"
	"time"

	"github.com/orderflow/orderflow/topology"
)

func TestGenerateIsDeterministic(t *testing.T) {
	a := Generate(Options{Seed: 7, Orders: 200})
	b := Generate(Options{Seed: 7, Orders: 200})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same options gave different workloads")
	}
	c := Generate(Options{Seed: 8, Orders: 200})
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same workload")
	}
}

// TestGenerateMix checks that a workload replayed through the machine has
// the promised mix: mostly accepted events, and every kind of trouble.
func TestGenerateMix(t *testing.T) {
	items := Generate(Options{Seed: 3, Orders: 2000})
	m := topology.Default()
	states := map[string]*topology.State{}
	reasons := map[string]int{}
	accepted, malformed := 0, 0
	for _, it := range items {
		if it.Malformed != nil {
			malformed++
			continue
		}
		ev := it.Event
		out := topology.Apply(m, states[ev.OrderID], &ev)
		if out.Accepted {
			accepted++
			next := out.Next
			states[ev.OrderID] = &next
		} else {
			reasons[out.Reason]++
		}
	}
	n := len(items)
	t.Logf("%d items: %d accepted, %d malformed, rejections %v", n, accepted, malformed, reasons)
	if float64(accepted) < 0.8*float64(n) {
		t.Errorf("only %d of %d events accepted; want mostly valid lifecycles", accepted, n)
	}
	for _, r := range []string{topology.ReasonInvalidTransition, topology.ReasonUnknownOrder,
		topology.ReasonGuardFailed, topology.ReasonDuplicateEvent, topology.ReasonTerminalState,
		topology.ReasonStaleEvent} {
		if reasons[r] == 0 {
			t.Errorf("no %s rejection in the workload", r)
		}
	}
	if malformed == 0 {
		t.Error("no malformed record in the workload")
	}
}

func TestGenerateEventsLimit(t *testing.T) {
	if n := len(Generate(Options{Seed: 1, Orders: 500, Events: 1234})); n != 1234 {
		t.Fatalf("got %d items, want 1234", n)
	}
}

// TestGenerateTimersAfterTheClock: with the default machine's timers, no
// timer of a default workload's orders falls due before the wall clock
// (the processor's clock fires none: events reveal each), and a lifecycle
// whose gaps are all shorter than a day never meets an unpaid timeout,
// so the workload's outcomes are the events' (replay without --now).
func TestGenerateTimersAfterTheClock(t *testing.T) {
	m := topology.Default()
	if !m.HasTimers() {
		t.Fatal("the default machine has no timers: the test proves nothing")
	}
	items := Generate(Options{Seed: 5, Orders: 2000})
	now := time.Now()
	states := map[string]*topology.State{}
	for _, it := range items {
		if it.Malformed != nil {
			continue
		}
		ev := it.Event
		st := states[ev.OrderID]
		if st != nil {
			st = topology.FireDue(m, st, ev.OccurredAt, false, func(tm *topology.Timer, _ *topology.Outcome) {
				if tm.State == "placed" {
					t.Errorf("order %s: the unpaid timer fired between its events (%s)", ev.OrderID, tm)
				}
				if !tm.Due.After(now) {
					t.Errorf("order %s: timer %s due at %v, before the wall clock", ev.OrderID, tm, tm.Due)
				}
			})
		}
		if out := topology.Apply(m, st, &ev); out.Accepted {
			next := out.Next
			st = &next
		}
		states[ev.OrderID] = st
	}
	pending := 0
	for id, st := range states {
		if st == nil {
			continue
		}
		if tm, ok := topology.NextTimer(m, st); ok {
			pending++
			if !tm.Due.After(now) {
				t.Errorf("order %s: timer %s due at %v, before the wall clock", id, tm, tm.Due)
			}
		}
	}
	t.Logf("%d orders with a pending timer at the end", pending)
	if !items[0].Event.OccurredAt.After(now) && items[0].Malformed == nil {
		t.Errorf("first event at %v, not after the wall clock", items[0].Event.OccurredAt)
	}
}
