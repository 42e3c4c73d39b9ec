package topology

import (
	"fmt"
	"sort"
	"strings"
)

// Rejection details that do not depend on the machine. They are constant so
// that the reject path allocates nothing; the rejection record carries the
// event type, state and IDs next to the detail anyway.
const (
	detailUnknownEventType = "event type is not declared by the machine"
	detailDuplicateEvent   = "event_id is among the last 32 events accepted for this order"
	detailStaleEvent       = "sequence is not greater than the last accepted sequence of this order"
	detailUnknownState     = "the order's current state is not a leaf state of this machine"
	detailOrderExists      = "order already exists"
)

// precomputeDetails builds every machine-dependent rejection detail once, at
// load time, so Apply never formats a string.
func (m *Machine) precomputeDetails() {
	creating := m.events[m.creating].name
	m.detailUnknownOrder = fmt.Sprintf("no such order: only %s creates one", creating)
	ne := len(m.events)
	m.detailInvalid = make([]string, len(m.nodes)*ne)
	for i := range m.nodes {
		n := &m.nodes[i]
		if !n.leaf() {
			continue
		}
		n.detailOrderExists = fmt.Sprintf("order already exists (state %s); %s only creates new orders", n.name, creating)
		n.detailTerminal = fmt.Sprintf("state %s is terminal: the order accepts no further events", n.name)
		var accepts []string
		for e := 0; e < ne; e++ {
			if m.table[i*ne+e] >= 0 {
				accepts = append(accepts, m.events[e].name)
			}
		}
		sort.Strings(accepts)
		list := "no events"
		if len(accepts) > 0 {
			list = strings.Join(accepts, ", ")
		}
		for e := 0; e < ne; e++ {
			if m.table[i*ne+e] < 0 {
				m.detailInvalid[i*ne+e] = fmt.Sprintf("no transition for %s from state %s (it accepts %s)", m.events[e].name, n.name, list)
			}
		}
	}
	for i := range m.transitions {
		t := &m.transitions[i]
		if t.event < 0 {
			continue // a timer: never refused, no guard
		}
		ev, src := m.events[t.event].name, m.nodes[t.source].name
		if t.kind == toReject {
			t.detailReject = fmt.Sprintf("%s is refused in %s", ev, src)
		}
		g := &t.guard
		switch g.kind {
		case guardAttributePresent:
			g.detailFailed = fmt.Sprintf("guard %s failed: attribute %s is missing or empty", g.text, g.attr)
		case guardWithin:
			since := m.events[g.since].name
			g.detailFailed = fmt.Sprintf("guard %s failed: more than %s since the last %s", g.text, g.withinText, since)
			g.detailNoMark = fmt.Sprintf("guard %s failed: no %s accepted yet", g.text, since)
		}
	}
}
