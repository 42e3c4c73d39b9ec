package topology

import (
	"strings"
	"time"
)

// build validates a parsed file and, if it has no problems, builds the
// Machine. Problems go to p.problems; every rule runs even after earlier
// ones failed, so one pass reports everything it can.
func (p *parser) build(f *rawFile) *Machine {
	m := &Machine{
		name:     f.name,
		states:   map[string]int32{},
		eventIdx: map[string]int32{},
		creating: -1,
		initial:  -1,
	}
	p.buildEvents(m, f)
	raws := p.buildStates(m, f)
	p.buildTransitions(m, raws)
	p.checkInitials(m, f, raws)
	if len(m.events) > 0 && len(m.nodes) > 0 {
		m.table = effectiveTable(m)
	}
	if m.initialLeaf >= 0 {
		p.checkReachable(m)
	}
	p.checkWayOut(m)
	if len(p.problems) > 0 {
		return nil
	}
	m.indexTimers()
	m.precomputeDetails()
	m.stateIx, m.eventIx = newNames(m.states), newNames(m.eventIdx)
	m.precomputeHistory()
	return m
}

// precomputeHistory fills m.historyMemo.
func (m *Machine) precomputeHistory() {
	ne := len(m.events)
	for l := range m.nodes {
		if !m.nodes[l].leaf() {
			continue
		}
		for e := range ne {
			ti := m.table[l*ne+e]
			if ti < 0 || m.transitions[ti].kind != toState {
				continue
			}
			w := m.historyWrites(nil, int32(l), m.nodes[m.transitions[ti].target].initialLeaf)
			if len(w) == 0 {
				continue
			}
			if m.historyMemo == nil {
				m.historyMemo = make([]map[string]string, len(m.table))
			}
			m.historyMemo[l*ne+e] = withSlots(nil, w)
		}
	}
}

var builtinReasons = map[string]bool{
	ReasonUnknownEventType: true, ReasonDuplicateEvent: true, ReasonUnknownOrder: true,
	ReasonOrderExists: true, ReasonTerminalState: true, ReasonStaleEvent: true,
	ReasonInvalidTransition: true, ReasonGuardFailed: true,
	ReasonStateTooLarge: true, ReasonStatusTooLarge: true,
}

func (p *parser) buildEvents(m *Machine, f *rawFile) {
	firstCreating := ""
	for _, re := range f.events {
		switch {
		case re.name == "":
			p.add(ProblemName, re.line, "", "", "event has no name")
			continue
		case !nameRE.MatchString(re.name):
			p.add(ProblemName, re.line, "", re.name, "event name must be lower_snake_case ([a-z][a-z0-9_]*)")
			continue
		case len(re.name) > MaxEventNameBytes:
			p.add(ProblemName, re.line, "", re.name[:32]+"...", "event name is %d bytes, more than the %d an event's type may have", len(re.name), MaxEventNameBytes)
			continue
		}
		if i, dup := m.eventIdx[re.name]; dup {
			p.add(ProblemName, re.line, "", re.name, "event declared twice (first on line %d)", m.events[i].line)
			continue
		}
		idx := int32(len(m.events))
		m.eventIdx[re.name] = idx
		m.events = append(m.events, event{name: re.name, description: re.description, line: re.line, creates: re.creates})
		m.eventNames = append(m.eventNames, re.name)
		if re.creates {
			if m.creating >= 0 {
				p.add(ProblemCreatingEvent, re.line, "", re.name, "second creating event (%s already creates orders); a machine has exactly one", firstCreating)
				continue
			}
			m.creating, firstCreating = idx, re.name
		}
	}
	if m.creating < 0 {
		p.add(ProblemCreatingEvent, 0, "", "", "no creating event: mark exactly one event with creates: true")
	}
}

// buildStates flattens the state tree depth first into m.nodes and returns
// the raw state of each node.
func (p *parser) buildStates(m *Machine, f *rawFile) []*rawState {
	var raws []*rawState
	var walk func(rs *rawState, parent int32, terminal bool) int32
	walk = func(rs *rawState, parent int32, terminal bool) int32 {
		idx := int32(len(m.nodes))
		terminal = terminal || rs.terminal
		m.nodes = append(m.nodes, node{
			name: rs.name, description: rs.description, line: rs.line,
			parent: parent, initial: -1, initialLeaf: -1, terminal: terminal,
		})
		raws = append(raws, rs)
		switch {
		case rs.name == "":
			p.add(ProblemName, rs.line, "", "", "state has no name")
		case !nameRE.MatchString(rs.name):
			p.add(ProblemName, rs.line, rs.name, "", "state name must be lower_snake_case ([a-z][a-z0-9_]*)")
		default:
			if first, dup := m.states[rs.name]; dup {
				p.add(ProblemName, rs.line, rs.name, "", "state declared twice (first on line %d)", m.nodes[first].line)
			} else {
				m.states[rs.name] = idx
			}
		}
		for _, c := range rs.children {
			ci := walk(c, idx, terminal)
			m.nodes[idx].children = append(m.nodes[idx].children, ci)
		}
		return idx
	}
	for _, rs := range f.states {
		walk(rs, -1, false)
	}
	if len(m.nodes) == 0 {
		p.add(ProblemSyntax, f.line, "", "", "machine has no states")
	}
	m.leafOf = make([]int32, len(m.nodes))
	for i := range m.nodes {
		m.leafOf[i] = -1
		if m.nodes[i].leaf() {
			m.leafOf[i] = int32(len(m.leafNames))
			m.leafNames = append(m.leafNames, m.nodes[i].name)
		}
	}
	return raws
}

func (p *parser) buildTransitions(m *Machine, raws []*rawState) {
	for si, rs := range raws {
		src := &m.nodes[si]
		declared := map[string]int{} // event -> line of first declaration here
		declaredAfter := map[time.Duration]int{}
		for _, rt := range rs.transitions {
			t := transition{line: rt.line, source: int32(si), event: -1, target: -1}
			ok := rt.targets == 1 && (rt.event != "") != (rt.after != "")
			if rt.after != "" && rt.event == "" {
				ok = p.buildTimer(rs.name, rt, &t, declaredAfter) && ok
			} else if rt.event != "" {
				if first, dup := declared[rt.event]; dup {
					p.add(ProblemDuplicateTransition, rt.line, rs.name, rt.event,
						"second transition for this event on this state (first on line %d); declare it once, or on a deeper state", first)
					ok = false
				} else {
					declared[rt.event] = rt.line
				}
				if ei, known := m.eventIdx[rt.event]; !known {
					p.add(ProblemUnknownEvent, rt.line, rs.name, rt.event, "unknown event (not in events)")
					ok = false
				} else {
					t.event = ei
					if m.events[ei].creates {
						p.add(ProblemCreatingEvent, rt.line, rs.name, rt.event,
							"transition on the creating event is never taken: an existing order refuses it with %s", ReasonOrderExists)
						ok = false
					}
				}
			}
			switch {
			case src.terminal && t.after > 0:
				p.add(ProblemTerminalTransition, rt.line, rs.name, "",
					"timer on a terminal state never fires: an order never leaves a terminal state")
				ok = false
			case src.terminal:
				p.add(ProblemTerminalTransition, rt.line, rs.name, rt.event,
					"transition on a terminal state is never taken: terminal states accept no events")
				ok = false
			}
			switch {
			case rt.to != "":
				t.kind = toState
				if ti, known := m.states[rt.to]; known {
					t.target = ti
				} else {
					p.add(ProblemUnknownTarget, rt.line, rs.name, rt.event, "unknown target state %q", rt.to)
					ok = false
				}
			case rt.history != "":
				t.kind = toHistory
				ti, known := m.states[rt.history]
				switch {
				case !known:
					p.add(ProblemUnknownTarget, rt.line, rs.name, rt.event, "history of unknown state %q", rt.history)
					ok = false
				case m.nodes[ti].leaf():
					p.add(ProblemUnknownTarget, rt.line, rs.name, rt.event, "history of %q: only a superstate has a history", rt.history)
					ok = false
					t.target = ti
				case m.nodes[ti].terminal:
					p.add(ProblemUnknownTarget, rt.line, rs.name, rt.event, "history of %q: a terminal superstate is never left, so it has no history", rt.history)
					ok = false
				default:
					t.target = ti
					m.nodes[ti].historyTarget = true
				}
			case rt.reject != "":
				t.kind = toReject
				t.reason = rt.reject
				switch {
				case !nameRE.MatchString(rt.reject):
					p.add(ProblemName, rt.line, rs.name, rt.event, "reject reason %q must be lower_snake_case", rt.reject)
					ok = false
				case builtinReasons[rt.reject]:
					p.add(ProblemName, rt.line, rs.name, rt.event, "reject reason %q is a built-in reason; give an explicit rejection its own code", rt.reject)
					ok = false
				}
			}
			if t.after > 0 && t.target >= 0 && !p.checkTimerTarget(m, int32(si), rt, &t) {
				ok = false
			}
			if rt.guard != nil && t.after == 0 {
				if !p.buildGuard(m, rs.name, rt, &t.guard) {
					ok = false
				}
			}
			if ok {
				m.transitions = append(m.transitions, t)
			} else {
				p.broken = append(p.broken, int32(si))
				if t.target >= 0 {
					p.brokenEdges = append(p.brokenEdges, brokenEdge{int32(si), t.target})
				}
			}
		}
	}
}

func (p *parser) buildGuard(m *Machine, state string, rt *rawTransition, g *guard) bool {
	rg := rt.guard
	g.text = rg.kind + ": " + strings.Join(strings.Fields(rg.value), " ")
	if rt.reject != "" {
		p.add(ProblemBadGuard, rg.line, state, rt.event, "an explicit rejection takes no guard")
		return false
	}
	switch rg.kind {
	case "attribute_present":
		if rg.value == "" {
			p.add(ProblemBadGuard, rg.line, state, rt.event, "attribute_present needs an attribute name")
			return false
		}
		g.kind, g.attr = guardAttributePresent, rg.value
		return true
	case "within":
		d, dtext, since, err := parseWithin(rg.value)
		if err != nil {
			p.add(ProblemBadGuard, rg.line, state, rt.event, "%v", err)
			return false
		}
		ei, known := m.eventIdx[since]
		if !known {
			p.add(ProblemUnknownEvent, rg.line, state, rt.event, "within guard: unknown event %q", since)
			return false
		}
		m.events[ei].marked = true
		g.kind, g.within, g.withinText, g.withinMS, g.since = guardWithin, d, dtext, d.Milliseconds(), ei
		return true
	default:
		p.add(ProblemUnknownGuard, rg.line, state, rt.event, "unknown guard kind %q (want attribute_present or within)", rg.kind)
		return false
	}
}

// checkInitials validates the initial children and the machine's initial
// state, and computes every node's initial leaf.
func (p *parser) checkInitials(m *Machine, f *rawFile, raws []*rawState) {
	// entered[i]: state i can be entered directly (not only by entering one
	// of its descendants), so a superstate there needs an initial child.
	entered := make([]bool, len(m.nodes))
	switch ti, known := m.states[f.initial]; {
	case f.initial == "":
		p.add(ProblemMissingInitial, 0, "", "", "machine has no initial state (top-level field initial)")
	case !known:
		p.add(ProblemUnknownTarget, f.initialLine, "", "", "machine initial: unknown state %q", f.initial)
	default:
		m.initial = ti
		entered[ti] = true
	}
	for _, t := range m.transitions {
		switch t.kind {
		case toState:
			entered[t.target] = true
		case toHistory:
			// An empty slot enters the initial child; a full one any child.
			entered[t.target] = true
			for _, c := range m.nodes[t.target].children {
				entered[c] = true
			}
		}
	}
	// Declared initial children (top-down, so entering a superstate marks
	// its initial child entered before the child is visited).
	for i := range m.nodes {
		n := &m.nodes[i]
		rs := raws[i]
		if rs.initial == "" {
			continue
		}
		if n.leaf() {
			p.add(ProblemUnknownTarget, rs.initialLine, n.name, "", "a leaf state has no children, so no initial child (%q)", rs.initial)
			continue
		}
		ci, known := m.states[rs.initial]
		if !known || m.nodes[ci].parent != int32(i) {
			p.add(ProblemUnknownTarget, rs.initialLine, n.name, "", "initial child %q is not a child of %s", rs.initial, n.name)
			continue
		}
		n.initial = ci
		if entered[i] {
			entered[ci] = true
		}
	}
	for i := range m.nodes {
		n := &m.nodes[i]
		if n.leaf() || n.initial >= 0 {
			continue
		}
		if raws[i].initial != "" {
			continue // already reported as a bad initial
		}
		switch {
		case !n.terminal:
			p.add(ProblemMissingInitial, n.line, n.name, "", "superstate has no initial child")
		case entered[i]:
			p.add(ProblemMissingInitial, n.line, n.name, "", "terminal superstate is entered directly but has no initial child")
		}
	}
	for i := range m.nodes {
		m.nodes[i].initialLeaf = m.enterLeaf(int32(i))
	}
	m.initialLeaf = -1
	if m.initial >= 0 {
		m.initialLeaf = m.nodes[m.initial].initialLeaf
	}
}

// enterLeaf follows initial children from i down to a leaf; -1 if a
// superstate on the way has none.
func (m *Machine) enterLeaf(i int32) int32 {
	for i >= 0 && !m.nodes[i].leaf() {
		i = m.nodes[i].initial
	}
	return i
}

func effectiveTable(m *Machine) []int32 {
	ne := len(m.events)
	declared := make([]int32, len(m.nodes)*ne) // on the state itself
	for i := range declared {
		declared[i] = -1
	}
	for ti, t := range m.transitions {
		if t.event >= 0 {
			declared[int(t.source)*ne+int(t.event)] = int32(ti)
		}
	}
	table := make([]int32, len(m.nodes)*ne)
	for i := range m.nodes {
		for e := 0; e < ne; e++ {
			table[i*ne+e] = -1
			if !m.nodes[i].leaf() {
				continue
			}
			for s := int32(i); s >= 0; s = m.nodes[s].parent {
				if d := declared[int(s)*ne+e]; d >= 0 {
					table[i*ne+e] = d
					break
				}
			}
		}
	}
	return table
}

// checkReachable reports states no sequence of events can lead to. Guards
// are assumed passable. Only the topmost unreachable state of a subtree is
// reported.
func (p *parser) checkReachable(m *Machine) {
	reached := make([]bool, len(m.nodes)) // a leaf, or a superstate with a reached leaf
	mark := func(leaf int32) bool {
		if leaf < 0 || reached[leaf] {
			return false
		}
		for s := leaf; s >= 0; s = m.nodes[s].parent {
			reached[s] = true
		}
		return true
	}
	mark(m.initialLeaf)
	for changed := true; changed; {
		changed = false
		for l := range m.nodes {
			if !reached[l] || !m.nodes[l].leaf() || m.nodes[l].terminal {
				continue
			}
			m.eachTarget(int32(l), func(to, child int32) {
				// A history slot holds a child the order was in.
				if child < 0 || reached[child] {
					changed = mark(to) || changed
				}
			})
		}
		for _, be := range p.brokenEdges {
			if reached[be.source] {
				changed = mark(m.nodes[be.target].initialLeaf) || changed
			}
		}
	}
	for i := range m.nodes {
		n := &m.nodes[i]
		if !m.named(int32(i)) {
			continue // a name problem, reported already
		}
		if !reached[i] && (n.parent < 0 || reached[n.parent]) {
			p.add(ProblemUnreachable, n.line, n.name, "", "unreachable: no sequence of events from the initial state %s leads here", m.nodes[m.initialLeaf].name)
		}
	}
}

// checkWayOut reports non-terminal leaves without a transition (other than
// an explicit rejection or a self-loop) to another state.
func (p *parser) checkWayOut(m *Machine) {
	if m.table == nil {
		return
	}
	ne := len(m.events)
	for l := range m.nodes {
		n := &m.nodes[l]
		if !n.leaf() || n.terminal || !m.named(int32(l)) || p.hasBroken(m, int32(l)) {
			continue
		}
		out := false
		for e := 0; e < ne && !out; e++ {
			ti := m.table[l*ne+e]
			if ti < 0 {
				continue
			}
			switch t := &m.transitions[ti]; t.kind {
			case toState:
				out = m.nodes[t.target].initialLeaf != int32(l)
			case toHistory:
				out = true
			}
		}
		m.timersOn(int32(l), func(t *transition) {
			// A timer always leaves the state declaring it (the loader
			// refuses targets inside it), so l too.
			out = out || t.kind != toReject
		})
		if !out {
			p.add(ProblemNoWayOut, n.line, n.name, "", "non-terminal leaf has no way out: no transition leads to another state (mark it terminal, or add one)")
		}
	}
}

// hasBroken reports whether leaf or one of its ancestors declares a
// transition that was dropped for another problem; the leaf's way out is
// then unknown, and reporting it would only repeat that problem.
func (p *parser) hasBroken(m *Machine, leaf int32) bool {
	for _, b := range p.broken {
		if m.isAncestor(b, leaf) {
			return true
		}
	}
	return false
}

// named reports whether node i owns its name (it is not a duplicate or
// malformed declaration).
func (m *Machine) named(i int32) bool {
	j, ok := m.states[m.nodes[i].name]
	return ok && j == i
}
