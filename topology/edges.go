package topology

import "slices"

// Edge is a move between two leaves that an accepted event can make. From
// is "" for the event that creates an order.
type Edge struct{ From, To string }

// Edges returns every move an accepted event can make in m, in leaf and
// event order, each once: the creating event's, and for every leaf and
// event type the effective transition's. A transition into a state enters
// its initial leaf; a return to a superstate's history may enter any of
// its children (at their initial leaves) or its own initial leaf, so all
// of them count. A program can use the list to know every (from, to) pair
// beforehand, as the processor does to export its transition counters at
// zero from the start.
func (m *Machine) Edges() []Edge {
	var out []Edge
	seen := map[Edge]bool{}
	add := func(from string, to int32) {
		if to < 0 {
			return
		}
		e := Edge{From: from, To: m.nodes[to].name}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	add("", m.initialLeaf)
	for l := range m.nodes {
		nd := &m.nodes[l]
		if !nd.leaf() || nd.terminal { // a terminal leaf refuses every event
			continue
		}
		m.eachTarget(int32(l), func(to, _ int32) { add(nd.name, to) })
	}
	return out
}

// eachTarget calls fn with every leaf an event or a timer can move leaf l
// to (by its effective transitions and the timers of l and its ancestors,
// guards assumed passable): a transition into a state enters its initial
// leaf (child -1); a return to a superstate's history its initial leaf
// (child -1) or a child's initial leaf (child, the child its history slot
// would name).
func (m *Machine) eachTarget(l int32, fn func(to, child int32)) {
	follow := func(t *transition) {
		switch t.kind {
		case toState:
			fn(m.nodes[t.target].initialLeaf, -1)
		case toHistory:
			fn(m.nodes[t.target].initialLeaf, -1)
			for _, c := range m.nodes[t.target].children {
				fn(m.nodes[c].initialLeaf, c)
			}
		}
	}
	ne := len(m.events)
	for e := range ne {
		if ti := m.table[int(l)*ne+e]; ti >= 0 {
			follow(&m.transitions[ti])
		}
	}
	m.timersOn(l, follow)
}

// Reasons returns every reason code a rejection by m can carry: Apply's
// own (the Reason constants), the explicit rejections m declares and the
// processor's (ReasonStateTooLarge, ReasonStatusTooLarge), sorted.
func (m *Machine) Reasons() []string {
	out := []string{
		ReasonUnknownEventType, ReasonDuplicateEvent, ReasonUnknownOrder, ReasonOrderExists,
		ReasonTerminalState, ReasonStaleEvent, ReasonInvalidTransition, ReasonGuardFailed,
		ReasonStateTooLarge, ReasonStatusTooLarge,
	}
	for i := range m.transitions {
		if t := &m.transitions[i]; t.kind == toReject {
			out = append(out, t.reason)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
