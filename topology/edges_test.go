package topology

import (
	"slices"
	"testing"
)

// TestEdgesOfTheDefaultMachine: the edges include the creation, plain
// moves, moves declared on a superstate and every return to history, and
// nothing out of a terminal state.
func TestEdgesOfTheDefaultMachine(t *testing.T) {
	edges := Default().Edges()
	for _, want := range []Edge{
		{"", "placed"}, {"placed", "confirmed"}, {"packed", "cancelled"}, {"confirmed", "shipped"},
		{"on_hold", "placed"}, {"on_hold", "confirmed"}, {"on_hold", "packed"}, {"shipped", "lost"},
	} {
		if !slices.Contains(edges, want) {
			t.Errorf("edges lack %v: %v", want, edges)
		}
	}
	for _, e := range edges {
		if Default().IsTerminal(e.From) {
			t.Errorf("edge %v out of a terminal state", e)
		}
		if !Default().IsLeaf(e.To) {
			t.Errorf("edge %v into a superstate", e)
		}
	}
	if len(edges) != len(slicesCompactEdges(edges)) {
		t.Errorf("an edge is listed twice: %v", edges)
	}
}

func slicesCompactEdges(es []Edge) []Edge {
	seen := map[Edge]bool{}
	var out []Edge
	for _, e := range es {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// TestReasonsOfTheDefaultMachine: Apply's reasons, the processor's and the
// machine's explicit rejection.
func TestReasonsOfTheDefaultMachine(t *testing.T) {
	got := Default().Reasons()
	for _, want := range []string{ReasonGuardFailed, ReasonStaleEvent, ReasonStateTooLarge, "cancel_after_shipment"} {
		if !slices.Contains(got, want) {
			t.Errorf("reasons %v lack %s", got, want)
		}
	}
}

// A timer's transition is an edge like an event's: a timer-fired
// transition must find its transitions_total series at 0 from start-up.
func TestEdgesIncludeTimers(t *testing.T) {
	m, err := Parse([]byte(`
initial: s
events: [{name: create, creates: true}, go]
states:
  - name: s
    initial: a
    transitions: [{after: 14d, to: lost}]
    states:
      - name: a
        transitions: [{after: 24h, to: c}, {event: go, to: b}]
      - name: b
        transitions: [{event: go, to: lost}]
      - name: c
        transitions: [{event: go, to: lost}]
  - name: done
    terminal: true
    states: [lost]
`))
	if err != nil {
		t.Fatal(err)
	}
	edges := m.Edges()
	for _, want := range []Edge{{"a", "c"}, {"a", "lost"}, {"b", "lost"}, {"c", "lost"}} {
		if !slices.Contains(edges, want) {
			t.Errorf("edges lack %v: %v", want, edges)
		}
	}
}
