package topology

import (
	"maps"
	"math"
	"time"
)

// Apply applies one event to one order and returns the outcome. st is the
// order's current state, nil when the order does not exist.
//
// Apply is pure: no I/O, no clock, and the same machine, state and event
// always give the same outcome. It never modifies *st or *ev, nor anything
// they point to. On a rejection Outcome.Next is the zero State.
//
// On acceptance Outcome.Next is a new State value built copy-on-write: it
// shares with *st every part the event does not change. Its Marks and
// History are st's own maps unless a slot is written with a different value.
// Then Marks is cloned, and History is either a map the Machine keeps for
// the move, shared by every order making it (when st's History has no slot
// the move leaves alone), or a clone. Its LastSequence is st's pointer when
// the event carries no sequence. Its RecentEventIDs is always a new slice
// with no spare capacity, and Next shares no memory with *ev. States are
// therefore immutable values once built: callers must treat the maps, slices
// and pointers of st and of Outcome.Next as read-only (see State). Setting a
// field of the Next value itself, as the processor does with ClosedAt, is
// fine.
//
// The checks run in this order (README.md, "Apply"): unknown event type,
// duplicate event ID (among the last RecentEventIDs accepted), unknown
// order, order exists, terminal state, stale sequence, then the machine:
// explicit rejection, no transition (invalid_transition), failed guard.
// The reject path allocates nothing.
func Apply(m *Machine, st *State, ev *Event) Outcome {
	return ApplyWith(m, st, ev, nil)
}

// ApplyWith is Apply taking the new state's RecentEventIDs and
// LastSequence from slab (nil: allocated, as Apply does).
func ApplyWith(m *Machine, st *State, ev *Event, slab *Slab) Outcome {
	from := ""
	if st != nil {
		from = st.State
	}
	e, ok := m.eventIx.index(ev.Type)
	if !ok {
		return reject(from, ReasonUnknownEventType, detailUnknownEventType)
	}
	if st == nil {
		if e != m.creating {
			return reject(from, ReasonUnknownOrder, m.detailUnknownOrder)
		}
		return m.accept(nil, ev, e, -1, m.initialLeaf, nil, slab)
	}
	for _, id := range st.RecentEventIDs {
		if id == ev.EventID {
			return reject(from, ReasonDuplicateEvent, detailDuplicateEvent)
		}
	}
	leaf, known := m.stateIx.index(st.State)
	known = known && m.nodes[leaf].leaf()
	if e == m.creating {
		if known {
			return reject(from, ReasonOrderExists, m.nodes[leaf].detailOrderExists)
		}
		return reject(from, ReasonOrderExists, detailOrderExists)
	}
	if known && m.nodes[leaf].terminal {
		return reject(from, ReasonTerminalState, m.nodes[leaf].detailTerminal)
	}
	if ev.Sequence != nil && st.LastSequence != nil && *ev.Sequence <= *st.LastSequence {
		return reject(from, ReasonStaleEvent, detailStaleEvent)
	}
	if !known {
		return reject(from, ReasonInvalidTransition, detailUnknownState)
	}
	cell := int(leaf)*len(m.events) + int(e)
	ti := m.table[cell]
	if ti < 0 {
		return reject(from, ReasonInvalidTransition, m.detailInvalid[cell])
	}
	t := &m.transitions[ti]
	switch t.guard.kind {
	case guardAttributePresent:
		if ev.Attributes[t.guard.attr] == "" {
			return reject(from, ReasonGuardFailed, t.guard.detailFailed)
		}
	case guardWithin:
		mark, ok := st.Marks[m.events[t.guard.since].name]
		if !ok {
			return reject(from, ReasonGuardFailed, t.guard.detailNoMark)
		}
		if !withinMillis(unixMilli(ev.OccurredAt), mark, t.guard.withinMS) {
			return reject(from, ReasonGuardFailed, t.guard.detailFailed)
		}
	}
	var target int32
	var memo map[string]string
	switch t.kind {
	case toReject:
		return reject(from, t.reason, t.detailReject)
	case toState:
		target = m.nodes[t.target].initialLeaf
		if m.historyMemo != nil {
			memo = m.historyMemo[cell]
		}
	case toHistory:
		target = m.historyLeaf(t.target, st.History)
	}
	return m.accept(st, ev, e, leaf, target, memo, slab)
}

// withinMillis reports whether at (Unix ms) is at most limit ms after mark,
// for any int64 values: at - mark is not computed in int64, where it
// overflows (a time 2^62 ms after a mark 2^62 ms before 1970 would wrap to
// a negative difference and pass). A time at or before the mark passes: the
// guard bounds how late an event may come, and producers' clocks disagree
// (the order of events is the sequence's business, not the guard's).
// limit is not negative (the loader wants a positive duration).
func withinMillis(at, mark, limit int64) bool {
	if at <= mark {
		return true
	}
	// at > mark: the difference is in [1, 2^64-1], exact in uint64.
	return uint64(at)-uint64(mark) <= uint64(limit)
}

// Bounds of the times whose Unix milliseconds fit an int64 (about 292
// million years either side of 1970).
var (
	minMilliTime = time.UnixMilli(math.MinInt64)
	maxMilliTime = time.UnixMilli(math.MaxInt64)
)

// unixMilli is t.UnixMilli(), saturated at the int64 range rather than
// wrapped (time.Time holds times far beyond it). Decoded events are well
// inside it; Apply takes any Event.
func unixMilli(t time.Time) int64 {
	if s := t.Unix(); s > math.MinInt64/1000+1 && s < math.MaxInt64/1000-1 {
		return t.UnixMilli() // the common case: two comparisons of seconds
	}
	switch {
	case t.Before(minMilliTime):
		return math.MinInt64
	case t.After(maxMilliTime):
		return math.MaxInt64
	}
	return t.UnixMilli()
}

func reject(from, reason, detail string) Outcome {
	return Outcome{From: from, Reason: reason, Detail: detail}
}

// historyLeaf resolves the shallow history of superstate s: the child named
// in its history slot (entered at its initial leaf), or s's initial leaf when
// the slot is empty or names no child of s.
func (m *Machine) historyLeaf(s int32, history map[string]string) int32 {
	if slot, ok := history[m.nodes[s].name]; ok {
		if c, ok := m.stateIx.index(slot); ok && m.nodes[c].parent == s {
			if l := m.nodes[c].initialLeaf; l >= 0 {
				return l
			}
		}
	}
	return m.nodes[s].initialLeaf
}

// accept builds the outcome of an accepted event moving the order from leaf
// source (-1 when the event creates it, st then nil) to leaf target. The new
// state shares with *st whatever does not change (see Apply).
func (m *Machine) accept(st *State, ev *Event, e, source, target int32, memo map[string]string, slab *Slab) Outcome {
	next := State{
		State:     m.nodes[target].name,
		Version:   1,
		CreatedAt: ev.OccurredAt,
		UpdatedAt: ev.OccurredAt,
		// ClosedAt stays nil: the processor sets it, it has the clock.
	}
	var prevIDs []string
	var prevHistory map[string]string
	from := ""
	if st != nil {
		from = st.State
		next.Version = st.Version + 1
		next.CreatedAt = st.CreatedAt
		next.LastSequence = st.LastSequence // shared: never written through
		next.Marks = st.Marks               // shared until a mark changes
		prevIDs, prevHistory = st.RecentEventIDs, st.History
	}

	// A new sequence is copied rather than aliased to *ev, which the caller
	// may reuse. It always differs from st's: the stale check refused any
	// sequence <= st.LastSequence.
	if ev.Sequence != nil {
		next.LastSequence = slab.int64(*ev.Sequence)
	}

	// Always a new slice, exactly keep+1 long with no spare capacity: the
	// window changes on every accepted event, and a shared backing array
	// must never be appended to in place.
	keep := min(len(prevIDs), RecentEventIDs-1)
	ids := slab.strings(keep + 1)
	copy(ids, prevIDs[len(prevIDs)-keep:])
	ids[keep] = ev.EventID
	next.RecentEventIDs = ids

	if m.events[e].marked {
		name, at := m.events[e].name, unixMilli(ev.OccurredAt)
		if prev, ok := next.Marks[name]; !ok || prev != at {
			marks := maps.Clone(next.Marks) // nil stays nil
			if marks == nil {
				marks = make(map[string]int64, 1)
			}
			marks[name] = at
			next.Marks = marks
		}
	}

	next.History = m.nextHistory(prevHistory, source, target, memo)
	next.Timers = m.nextTimers(st, source, target, -1, unixMilli(ev.OccurredAt), slab)
	fromLeaf := -1
	if source >= 0 {
		fromLeaf = int(m.leafOf[source])
	}
	return Outcome{Accepted: true, From: from, To: next.State, FromLeaf: fromLeaf, ToLeaf: int(m.leafOf[target]), Next: next}
}

// historyWrite is a history slot a move sets: superstate super's slot to
// child, the child the order leaves.
type historyWrite struct{ super, child string }

// historyWrites appends to w the history slots the move from leaf source to
// leaf target sets: every superstate on the way up from source that does
// not contain target (it is left), and the innermost one that contains
// both, if the move changes its child. Only superstates some transition
// targets the history of have a slot.
func (m *Machine) historyWrites(w []historyWrite, source, target int32) []historyWrite {
	child := source
	for s := m.nodes[source].parent; s >= 0; child, s = s, m.nodes[s].parent {
		contains := m.isAncestor(s, target)
		if contains && m.childToward(s, target) == child {
			break // same child of s before and after: nothing above changes
		}
		if m.nodes[s].historyTarget {
			w = append(w, historyWrite{m.nodes[s].name, m.nodes[child].name})
		}
		if contains {
			break
		}
	}
	return w
}

// nextHistory returns prev with the slots historyWrites gives for the move
// from leaf source (-1: none) to leaf target set.
//
// prev is never modified. It is returned as is when no slot changes value.
// Otherwise the result is memo, when memo is the precomputed map of exactly
// the move's slots (see Machine.historyMemo) and prev has no slot the move
// does not set, or else a clone of prev with the slots set.
func (m *Machine) nextHistory(prev map[string]string, source, target int32, memo map[string]string) map[string]string {
	if source < 0 {
		return prev
	}
	var buf [4]historyWrite
	w := m.historyWrites(buf[:0], source, target)
	changed, covered := false, 0
	for _, s := range w {
		old, ok := prev[s.super]
		if ok {
			covered++
		}
		if !ok || old != s.child {
			changed = true
		}
	}
	if !changed {
		return prev
	}
	if memo != nil && covered == len(prev) {
		return memo
	}
	return withSlots(prev, w)
}

// withSlots returns a new map: prev's slots (prev may be nil) with w set.
func withSlots(prev map[string]string, w []historyWrite) map[string]string {
	h := make(map[string]string, len(prev)+len(w))
	maps.Copy(h, prev)
	for _, s := range w {
		h[s.super] = s.child
	}
	return h
}
