package topology

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// slabLifecycle returns the events of an order's whole lifecycle in the
// default machine, every one accepted, and run, which applies them in turn
// with ApplyWith and the given slab and returns the states it built.
func slabLifecycle(t *testing.T) (events []Event, run func(*Slab) []State) {
	t.Helper()
	m := Default()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	types := []string{"place_order", "confirm_payment", "hold_order", "release_hold", "pack_order",
		"ship_order", "dispatch_order", "deliver_order", "complete_order"}
	events = make([]Event, len(types))
	for i, typ := range types {
		seq := int64(i + 1)
		events[i] = Event{EventID: fmt.Sprintf("e%d", i), OrderID: "o", Type: typ, OccurredAt: at.Add(time.Duration(i) * time.Hour),
			Sequence: &seq, Attributes: map[string]string{"tracking_number": "1Z"}}
	}
	run = func(slab *Slab) []State {
		var states []State
		var st *State
		for i := range events {
			out := ApplyWith(m, st, &events[i], slab)
			if !out.Accepted {
				t.Fatalf("%s refused: %s", events[i].Type, out.Reason)
			}
			states = append(states, out.Next)
			st = &states[len(states)-1]
		}
		return states
	}
	return events, run
}

// TestApplyWithSlab checks that ApplyWith with a Slab builds the states
// Apply builds, each RecentEventIDs without spare capacity (appending to
// one never writes into another state's), and each LastSequence its own.
func TestApplyWithSlab(t *testing.T) {
	_, run := slabLifecycle(t)
	want, got := run(nil), run(&Slab{})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("with a slab:\n%+v\nwithout:\n%+v", got, want)
	}
	for i := range got {
		ids := got[i].RecentEventIDs
		if cap(ids) != len(ids) {
			t.Errorf("state %d: RecentEventIDs has capacity %d for %d IDs", i, cap(ids), len(ids))
		}
		_ = append(ids, "appended")
		if i+1 < len(got) && !reflect.DeepEqual(got[i+1], want[i+1]) {
			t.Errorf("appending to state %d's IDs changed state %d", i, i+1)
		}
		for j := range i {
			if got[j].LastSequence == got[i].LastSequence {
				t.Errorf("states %d and %d share a LastSequence", j, i)
			}
		}
	}
}

// TestApplyWithSlabAllocs checks that the slab saves the allocations it is
// for: each accepted event's IDs and sequence. An allocation guard: it runs
// in every test run but -race's (make test runs the guards on their own).
func TestApplyWithSlabAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	events, run := slabLifecycle(t)
	without := testing.AllocsPerRun(50, func() { run(nil) })
	slab := &Slab{}
	with := testing.AllocsPerRun(50, func() { run(slab) })
	// Each accepted event allocates its IDs and its sequence without one.
	if with > without-2*float64(len(events))+2 {
		t.Errorf("allocations per lifecycle: %v with a slab, %v without; want %d fewer (a chunk now and then aside)", with, without, 2*len(events))
	}
}
