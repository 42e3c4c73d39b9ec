package topology

import (
	"testing"
	"time"
)

// FuzzApply runs a fuzzed script of events over a few orders through Apply
// and checks checkOutcome's contract after every step: Apply never panics,
// never modifies the state it is given, an accepted event grows the version
// by exactly one and lands on a leaf of the machine, sharing with the old
// state exactly the maps it does not change, a rejected one leaves the state
// unchanged. At the end every state the script built must still be as it
// was built (no write through memory shared copy-on-write).
//
// Each event takes 5 bytes of script: order, event type, event ID, sequence,
// time step. extraType is one more event type to draw from (usually
// undeclared); startState, if not empty, is the hand-made state order "x"
// starts in (usually not a leaf).
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 1, 1, 3, 1, 0, 3, 2, 5, 1, 0, 9, 3, 0, 1, 0, 13, 4, 0, 200}, "teleport", "")
	f.Add([]byte{0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 5, 2, 0, 0, 0, 4, 1, 0, 0, 0, 6, 3, 0, 0}, "", "on_hold")
	f.Add([]byte{3, 1, 7, 7, 7, 3, 2, 7, 7, 7}, "place_order", "delivered")
	f.Add([]byte("a fairly long script of arbitrary bytes to start from"), "x", "ghost")
	machines := []*Machine{Default(), mustParse(f, historyMachine)}
	f.Fuzz(func(t *testing.T, script []byte, extraType, startState string) {
		if len(script) == 0 {
			return
		}
		m := machines[int(script[0])%len(machines)]
		types := append(m.EventTypes(), extraType)
		orders := map[string]*State{}
		var frozen snapshots
		if startState != "" {
			orders["x"] = &State{State: startState, Version: 1, History: map[string]string{"work": startState, "open": startState}}
			frozen.add(orders["x"])
		}
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 1; i+5 <= len(script); i += 5 {
			b := script[i : i+5]
			ev := &Event{
				OrderID: []string{"a", "b", "x"}[int(b[0])%3],
				Type:    types[int(b[1])%len(types)],
				EventID: string(rune('A' + b[2]%40)),
			}
			if b[3]&1 == 1 {
				seq := int64(b[3]>>1) - 20
				ev.Sequence = &seq
			}
			// Steps of up to ~64 days either way, in hours and odd milliseconds,
			// so within guards are hit on both sides of their bound.
			at = at.Add(time.Duration(int8(b[4]))*12*time.Hour + time.Duration(b[4]%3)*time.Millisecond)
			ev.OccurredAt = at
			switch b[3] % 3 {
			case 0:
				ev.Attributes = map[string]string{"tracking_number": "1Z"}
			case 1:
				ev.Attributes = map[string]string{"tracking_number": ""}
			}
			st := orders[ev.OrderID]
			before := cloneState(st)
			out := Apply(m, st, ev)
			if err := checkOutcome(m, before, st, ev, out); err != nil {
				t.Fatalf("event %d (%+v) on %+v: %v", i/5, ev, st, err)
			}
			if out.Accepted {
				next := out.Next
				orders[ev.OrderID] = &next
				frozen.add(&next)
			}
		}
		if err := frozen.check(); err != nil {
			t.Fatal(err)
		}
	})
}

const historyMachine = `
initial: work
events:
  - {name: create, creates: true}
  - next
  - pause
  - resume
  - finish
states:
  - name: work
    initial: prep
    transitions:
      - {event: pause, to: paused}
      - {event: finish, to: done}
    states:
      - name: prep
        transitions:
          - {event: next, to: build}
      - name: build
        initial: build_a
        states:
          - name: build_a
            transitions:
              - {event: next, to: build_b}
          - name: build_b
            transitions:
              - {event: next, to: prep}
  - name: paused
    transitions:
      - {event: resume, history: work}
  - name: done
    terminal: true
`

func mustParse(tb testing.TB, src string) *Machine {
	tb.Helper()
	m, err := Parse([]byte(src))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
