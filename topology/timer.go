package topology

import (
	"sort"
	"strconv"
	"time"
)

// Timers (timed transitions, `after: DURATION`).
//
// A state that declares timers has a clock that starts when the order enters
// it: State.Timers records the entry time (event time) of every state on the
// order's path that declares timers. A timer is due at entry + delay. The
// clock of a superstate keeps running while the order moves between its
// children; leaving the state drops its entry, which cancels its timers.
// Firing a timer is a transition out of the state that declares it (the
// loader refuses targets inside it), so the states entered by the move get
// fresh clocks, even one the order re-enters through history.
//
// Apply does not fire timers: a caller fires the timers due strictly before
// an event's occurred_at first (Timer.FiresBefore, Fire), in due order, so
// that live processing and replay follow one rule.

// Timer is an order's pending timed transition.
type Timer struct {
	// State is the state declaring the timer (a leaf or a superstate).
	State string
	// After is the delay, and AfterText the delay as the machine writes it.
	After     time.Duration
	AfterText string
	// Entered is when the order entered State; Due is Entered + After.
	Entered, Due time.Time

	ti int32 // index into Machine.transitions
}

// String names the timer as the machine declares it: "placed after 24h".
func (t Timer) String() string { return t.State + " after " + t.AfterText }

// ID identifies one firing of the timer: the timer and the entry into its
// state that armed it. Status changes carry it as their event_id, so a
// timer that fired more than once for one entry would show as a repeated
// ID.
func (t Timer) ID() string {
	return "timer:" + t.State + ":" + t.AfterText + ":" + strconv.FormatInt(unixMilli(t.Entered), 10)
}

// FiresBefore reports whether the timer fires before an event that occurred
// at: only a timer due strictly earlier does. An event at the very instant
// of the deadline still meets the order in its state, like the inclusive
// bound of a within guard, and at the same millisecond precision (the
// wire's): an event a fraction of a millisecond after the deadline is at it.
func (t Timer) FiresBefore(at time.Time) bool { return DueBefore(unixMilli(t.Due), at) }

// DueBefore is FiresBefore for a timer due at due (Unix ms, as NextDue
// returns it).
func DueBefore(due int64, at time.Time) bool { return due < unixMilli(at) }

// HasTimers reports whether the machine declares any timed transition.
func (m *Machine) HasTimers() bool { return m.hasTimers }

// TimedStates returns the states that declare timed transitions (leaves or
// superstates), in file order: the processor exports a fired-timers
// counter for each from the start.
func (m *Machine) TimedStates() []string {
	var out []string
	for i := range m.nodes {
		if len(m.nodes[i].timers) > 0 {
			out = append(out, m.nodes[i].name)
		}
	}
	return out
}

// NextTimer returns the pending timer of the order in st that is due first,
// and false if it has none (no state on its path declares one, or it is
// terminal or in a state the machine does not know). Of timers due at the
// same instant, the deepest state's comes first, as the deepest declaration
// wins for events.
func NextTimer(m *Machine, st *State) (Timer, bool) {
	due, entered, ti, ok := m.nextDue(st)
	if !ok {
		return Timer{}, false
	}
	t := &m.transitions[ti]
	return Timer{
		State: m.nodes[t.source].name, After: t.after, AfterText: t.afterText,
		Entered: time.UnixMilli(entered).UTC(), Due: time.UnixMilli(due).UTC(), ti: ti,
	}, true
}

// NextDue returns when NextTimer's timer is due, in Unix milliseconds,
// without building it: the processor asks once per transition, and keeps
// the answer for the check before each event and the due-time index.
func NextDue(m *Machine, st *State) (int64, bool) {
	due, _, _, ok := m.nextDue(st)
	return due, ok
}

// nextDue finds the order's first pending timer: when it is due and its
// state was entered (Unix ms), and its transition.
func (m *Machine) nextDue(st *State) (due, entered int64, ti int32, ok bool) {
	if !m.hasTimers || st == nil {
		return 0, 0, 0, false
	}
	leaf, known := m.stateIx.index(st.State)
	if !known || int(leaf) >= len(m.timedPath) {
		return 0, 0, 0, false
	}
	for _, n := range m.timedPath[leaf] {
		e, has := st.ClockOf(m.nodes[n].name)
		if !has {
			// A state entered under a machine without this timer: count
			// from the last accepted transition.
			e = unixMilli(st.UpdatedAt)
		}
		for _, i := range m.nodes[n].timers {
			d := satAdd(e, m.transitions[i].afterMS)
			if ok && d >= due {
				continue
			}
			due, entered, ti, ok = d, e, i, true
		}
	}
	return due, entered, ti, ok
}

// satAdd is a+b (b >= 0) saturated at the int64 range.
func satAdd(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return 1<<63 - 1
}

// Fire fires timer tm, as NextTimer returned it for st, and returns the
// outcome: an accepted transition at tm.Due. Like Apply it is pure and
// builds the next state copy-on-write; it does not touch the order's
// recent event IDs, sequence or marks (no event was accepted). The caller
// decides when a timer is due (FiresBefore, or its clock).
func Fire(m *Machine, st *State, tm Timer) Outcome { return FireWith(m, st, tm, nil) }

// FireWith is Fire taking the new state's Timers from slab (nil:
// allocated), as ApplyWith does.
func FireWith(m *Machine, st *State, tm Timer, slab *Slab) Outcome {
	leaf, _ := m.stateIx.index(st.State)
	t := &m.transitions[tm.ti]
	var target int32
	if t.kind == toHistory {
		target = m.historyLeaf(t.target, st.History)
	} else {
		target = m.nodes[t.target].initialLeaf
	}
	next := *st
	next.State = m.nodes[target].name
	next.Version = st.Version + 1
	next.UpdatedAt = tm.Due
	due := unixMilli(tm.Due)
	next.History = m.nextHistory(st.History, leaf, target, nil)
	next.Timers = m.nextTimers(st, leaf, target, t.source, due, slab)
	return Outcome{
		Accepted: true, From: st.State, To: next.State,
		FromLeaf: int(m.leafOf[leaf]), ToLeaf: int(m.leafOf[target]), Next: next,
	}
}

// nextTimers returns the Timers of an order moving from leaf source (-1:
// it is created; st is then nil) to leaf target at (Unix ms), by a timer of
// state exited (-1 for an event), new ones from slab. It returns st.Timers
// itself when nothing changes, nil when no state on the new path has
// timers.
func (m *Machine) nextTimers(st *State, source, target, exited int32, at int64, slab *Slab) []Clock {
	if !m.hasTimers {
		return nil
	}
	path := m.timedPath[target]
	if len(path) == 0 {
		return nil
	}
	if st != nil && len(st.Timers) == len(path) {
		same := true
		for _, n := range path {
			if !m.keepsClock(n, source, exited) {
				same = false
				break
			}
			if _, ok := st.ClockOf(m.nodes[n].name); !ok {
				same = false
				break
			}
		}
		if same {
			return st.Timers
		}
	}
	next := slab.clocks(len(path))
	for i, n := range path {
		c := Clock{State: m.nodes[n].name, Entered: at}
		if m.keepsClock(n, source, exited) {
			if old, ok := st.ClockOf(c.State); ok {
				c.Entered = old
			} else {
				c.Entered = unixMilli(st.UpdatedAt)
			}
		}
		next[i] = c
	}
	SortClocks(next)
	return next
}

// keepsClock reports whether a move from leaf source leaves the clock of
// state n (on the new path) running: the order was in n before and the move
// does not exit it (a timer exits the state declaring it and everything
// inside).
func (m *Machine) keepsClock(n, source, exited int32) bool {
	return source >= 0 && m.isAncestor(n, source) && (exited < 0 || !m.isAncestor(exited, n))
}

// buildTimer validates the delay of timed transition rt and records it in t.
func (p *parser) buildTimer(state string, rt *rawTransition, t *transition, declared map[time.Duration]int) bool {
	line := rt.afterLine
	if line == 0 {
		line = rt.line
	}
	ok := true
	d, err := ParseDuration(rt.after)
	switch {
	case err != nil:
		p.add(ProblemBadTimer, line, state, "", "after %q: bad duration: %v", rt.after, err)
		return false
	case d <= 0 || d%time.Millisecond != 0:
		p.add(ProblemBadTimer, line, state, "", "after %q: the delay must be positive and a whole number of milliseconds", rt.after)
		return false
	}
	if first, dup := declared[d]; dup {
		p.add(ProblemBadTimer, rt.line, state, "", "second timer after %s on this state (first on line %d); a state has at most one timer per delay", rt.after, first)
		ok = false
	} else {
		declared[d] = rt.line
	}
	if rt.reject != "" {
		p.add(ProblemBadTimer, rt.line, state, "", "a timer cannot reject: no event is refused when time passes (use to or history)")
		ok = false
	}
	if rt.guard != nil {
		p.add(ProblemBadTimer, rt.guard.line, state, "", "a timer takes no guard")
		ok = false
	}
	t.after, t.afterText, t.afterMS = d, rt.after, d.Milliseconds()
	return ok
}

// checkTimerTarget refuses a timer whose target lies inside the state that
// declares it: firing would not leave the state, so its clock would never
// restart and the timer would fire again at once, forever.
func (p *parser) checkTimerTarget(m *Machine, source int32, rt *rawTransition, t *transition) bool {
	if !m.isAncestor(source, t.target) {
		return true
	}
	what := "to " + m.nodes[t.target].name
	if t.kind == toHistory {
		what = "to the history of " + m.nodes[t.target].name
	}
	p.add(ProblemBadTimer, rt.line, m.nodes[source].name, "",
		"timer after %s goes %s, inside %s: a timer must leave the state that declares it", rt.after, what, m.nodes[source].name)
	return false
}

// indexTimers fills the machine's timer lookups: every state's timers by
// delay, and every leaf's timed states, innermost first.
func (m *Machine) indexTimers() {
	for ti := range m.transitions {
		t := &m.transitions[ti]
		if t.after > 0 {
			m.nodes[t.source].timers = append(m.nodes[t.source].timers, int32(ti))
			m.hasTimers = true
		}
	}
	if !m.hasTimers {
		return
	}
	m.timedPath = make([][]int32, len(m.nodes))
	for i := range m.nodes {
		n := &m.nodes[i]
		sort.Slice(n.timers, func(a, b int) bool {
			return m.transitions[n.timers[a]].after < m.transitions[n.timers[b]].after
		})
		if !n.leaf() {
			continue
		}
		for s := int32(i); s >= 0; s = m.nodes[s].parent {
			if len(m.nodes[s].timers) > 0 {
				m.timedPath[i] = append(m.timedPath[i], s)
			}
		}
	}
}

// timersOn calls fn for every timed transition that applies to leaf l (declared
// on it or an ancestor).
func (m *Machine) timersOn(l int32, fn func(t *transition)) {
	for i := range m.transitions {
		if t := &m.transitions[i]; t.after > 0 && m.isAncestor(t.source, l) {
			fn(t)
		}
	}
}

// FireDue fires the timers of the order in st that are due before limit
// (or at it, when inclusive), in due order, calling fn with each timer and
// its outcome, and returns the order's state after them (st when none was
// due). Before an event, limit is the event's occurred_at and inclusive
// false (see Timer.FiresBefore); on a clock, limit is the clock's time and
// inclusive true.
func FireDue(m *Machine, st *State, limit time.Time, inclusive bool, fn func(tm *Timer, out *Outcome)) *State {
	for {
		tm, ok := NextTimer(m, st)
		if !ok || !tm.FiresBefore(limit) && !(inclusive && tm.Due.Equal(limit)) {
			return st
		}
		out := Fire(m, st, tm)
		fn(&tm, &out)
		next := out.Next
		st = &next
	}
}
