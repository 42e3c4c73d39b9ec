package topology

// Bounds are the longest names and the most map entries that the states
// and outcomes of a machine hold, for sizing the records built from them
// (see avro.MaxEncodedSizes). They cover states the machine builds: a state
// built by another machine keeps that machine's marks and history slots.
// Lengths are in bytes.
type Bounds struct {
	LeafName  int // the longest leaf state name (State.State, Outcome.From and To)
	EventName int // the longest declared event type
	Reason    int // the longest rejection reason, built-in or the machine's
	Detail    int // the longest rejection detail

	Marks    int // most entries of State.Marks: the event types within guards name
	MarkName int // the longest of those event types

	History      int // most entries of State.History: superstates some transition returns to
	HistoryKey   int // the longest of those superstates' names
	HistoryValue int // the longest name of a child of one of them
}

// Bounds returns the machine's Bounds.
func (m *Machine) Bounds() Bounds {
	var b Bounds
	for i := range m.nodes {
		n := &m.nodes[i]
		if n.leaf() {
			b.LeafName = max(b.LeafName, len(n.name))
			b.Detail = max(b.Detail, len(n.detailOrderExists), len(n.detailTerminal))
		}
		if n.historyTarget {
			b.History++
			b.HistoryKey = max(b.HistoryKey, len(n.name))
			for _, c := range n.children {
				b.HistoryValue = max(b.HistoryValue, len(m.nodes[c].name))
			}
		}
	}
	for i := range m.events {
		e := &m.events[i]
		b.EventName = max(b.EventName, len(e.name))
		if e.marked {
			b.Marks++
			b.MarkName = max(b.MarkName, len(e.name))
		}
	}
	for _, r := range [...]string{
		ReasonUnknownEventType, ReasonDuplicateEvent, ReasonUnknownOrder, ReasonOrderExists,
		ReasonTerminalState, ReasonStaleEvent, ReasonInvalidTransition, ReasonGuardFailed,
	} {
		b.Reason = max(b.Reason, len(r))
	}
	for _, d := range [...]string{
		detailUnknownEventType, detailDuplicateEvent, detailStaleEvent, detailUnknownState,
		detailOrderExists, m.detailUnknownOrder,
	} {
		b.Detail = max(b.Detail, len(d))
	}
	for _, d := range m.detailInvalid {
		b.Detail = max(b.Detail, len(d))
	}
	for i := range m.transitions {
		t := &m.transitions[i]
		b.Reason = max(b.Reason, len(t.reason))
		b.Detail = max(b.Detail, len(t.detailReject), len(t.guard.detailFailed), len(t.guard.detailNoMark))
	}
	return b
}
