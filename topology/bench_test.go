package topology

import (
	"fmt"
	"testing"
	"time"
)

// benchState is an order well into its life: a full duplicate window, a
// sequence, a mark and a history slot.
func benchState(leaf string) *State {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := make([]string, RecentEventIDs)
	for i := range ids {
		ids[i] = fmt.Sprintf("evt-%02d", i)
	}
	seq := int64(40)
	return &State{
		State: leaf, Version: 40, CreatedAt: at, UpdatedAt: at.Add(time.Hour),
		LastSequence: &seq, RecentEventIDs: ids,
		Marks:   map[string]int64{"deliver_order": at.Add(time.Hour).UnixMilli()},
		History: map[string]string{"open": "packed"},
	}
}

type applyCase struct {
	name   string
	st     *State
	ev     Event
	accept bool
	reason string
}

func applyCases() []applyCase {
	at := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	seq := func(n int64) *int64 { return &n }
	return []applyCase{
		{"accept/create", nil, Event{EventID: "n1", OrderID: "o", Type: "place_order", OccurredAt: at, Sequence: seq(1)}, true, ""},
		{"accept/transition", benchState("confirmed"), Event{EventID: "n1", OrderID: "o", Type: "pack_order", OccurredAt: at, Sequence: seq(41)}, true, ""},
		{"accept/guard_within", benchState("delivered"), Event{EventID: "n1", OrderID: "o", Type: "request_return", OccurredAt: at}, true, ""},
		{"accept/history", benchState("on_hold"), Event{EventID: "n1", OrderID: "o", Type: "release_hold", OccurredAt: at}, true, ""},
		// A mark changes (Marks cloned), History stays shared.
		{"accept/mark", benchState("shipped"), Event{EventID: "n1", OrderID: "o", Type: "deliver_order", OccurredAt: at, Sequence: seq(41)}, true, ""},
		// packed -> on_hold writes open=packed, the slot's value already:
		// neither map changes, both are shared.
		{"accept/history_unchanged", benchState("packed"), Event{EventID: "n1", OrderID: "o", Type: "hold_order", OccurredAt: at}, true, ""},
		{"reject/unknown_event_type", benchState("placed"), Event{EventID: "n1", Type: "teleport_order", OccurredAt: at}, false, ReasonUnknownEventType},
		{"reject/duplicate_event", benchState("placed"), Event{EventID: "evt-31", Type: "confirm_payment", OccurredAt: at}, false, ReasonDuplicateEvent},
		{"reject/unknown_order", nil, Event{EventID: "n1", Type: "confirm_payment", OccurredAt: at}, false, ReasonUnknownOrder},
		{"reject/order_exists", benchState("placed"), Event{EventID: "n1", Type: "place_order", OccurredAt: at}, false, ReasonOrderExists},
		{"reject/terminal_state", benchState("cancelled"), Event{EventID: "n1", Type: "cancel_order", OccurredAt: at}, false, ReasonTerminalState},
		{"reject/stale_event", benchState("placed"), Event{EventID: "n1", Type: "confirm_payment", OccurredAt: at, Sequence: seq(40)}, false, ReasonStaleEvent},
		{"reject/invalid_transition", benchState("placed"), Event{EventID: "n1", Type: "deliver_order", OccurredAt: at}, false, ReasonInvalidTransition},
		{"reject/explicit", benchState("shipped"), Event{EventID: "n1", Type: "cancel_order", OccurredAt: at}, false, "cancel_after_shipment"},
		{"reject/guard_failed", benchState("confirmed"), Event{EventID: "n1", Type: "ship_order", OccurredAt: at}, false, ReasonGuardFailed},
	}
}

// BenchmarkApply measures Apply on the default machine per path. Apply is
// pure, so one state and event are applied over and over. On the accept
// paths the cost is mostly what Next cannot share with the old state (see
// Apply): the new duplicate window always, a new sequence, and a clone of
// Marks or History only when the event changes one.
func BenchmarkApply(b *testing.B) {
	m := Default()
	for _, c := range applyCases() {
		b.Run(c.name, func(b *testing.B) {
			if out := Apply(m, c.st, &c.ev); out.Accepted != c.accept || out.Reason != c.reason {
				b.Fatalf("outcome %+v, want accepted=%v reason=%q", out, c.accept, c.reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				Apply(m, c.st, &c.ev)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkApplyLifecycle runs whole orders through the default machine
// (14 events each, 13 accepted, one explicit rejection), storing every new
// state.
func BenchmarkApplyLifecycle(b *testing.B) {
	runLifecycle(b, Default(), nil)
}

// runLifecycle runs benchLifecycle's order through m over and over, calling
// before (if not nil) with the order's state before each event.
func runLifecycle(b *testing.B, m *Machine, before func(st *State, ev *Event)) {
	events := benchLifecycle()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		var st *State
		for i := range events {
			if before != nil {
				before(st, &events[i])
			}
			out := Apply(m, st, &events[i])
			if out.Accepted {
				next := out.Next
				st = &next
			}
			n++
		}
		if st.State != "completed" {
			b.Fatalf("order ended in %s", st.State)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// benchLifecycle returns the events of one order of BenchmarkApplyLifecycle,
// an hour apart.
func benchLifecycle() []Event {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	types := []string{"place_order", "confirm_payment", "hold_order", "release_hold", "pack_order",
		"ship_order", "cancel_order", "dispatch_order", "fail_delivery", "dispatch_order",
		"deliver_order", "request_return", "decline_return", "complete_order"}
	events := make([]Event, len(types))
	for i, typ := range types {
		events[i] = Event{EventID: fmt.Sprintf("e%d", i), OrderID: "o", Type: typ, OccurredAt: at.Add(time.Duration(i) * time.Hour),
			Attributes: map[string]string{"tracking_number": "1Z"}}
	}
	return events
}

// TestApplyRejectPathAllocs: every rejection reason, zero
// allocations (details are precomputed at load time).
func TestApplyRejectPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m := Default()
	for _, c := range applyCases() {
		if c.accept {
			continue
		}
		out := Apply(m, c.st, &c.ev)
		if out.Accepted || out.Reason != c.reason {
			t.Fatalf("%s: outcome %+v, want reason %q", c.name, out, c.reason)
		}
		if n := testing.AllocsPerRun(100, func() { Apply(m, c.st, &c.ev) }); n != 0 {
			t.Errorf("%s: %v allocations per rejection, want 0", c.name, n)
		}
	}
}
