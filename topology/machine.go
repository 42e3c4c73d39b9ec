package topology

import "time"

// Machine is a validated, immutable order state machine. Build one with
// Parse, Load or LoadFile, or use Default. A Machine is safe for concurrent
// use: nothing mutates it after loading.
//
// Its accessors (Name, States, Leaves, EventTypes, CreatingEvent,
// InitialState, IsLeaf, IsTerminal, Parent) describe the machine to
// programs built on this package, such as a traffic generator or an editor;
// orderflow itself calls only some of them.
//
// Internally states and events are interned by index and the effective
// transition of every (leaf, event) pair is precomputed, together with every
// rejection detail string, so Apply does no allocation on the reject path.
type Machine struct {
	name string

	nodes  []node
	states map[string]int32 // state name -> index into nodes

	events   []event
	eventIdx map[string]int32 // event type -> index into events

	// stateIx and eventIx index states and eventIdx for Apply (names.go).
	stateIx, eventIx names

	creating    int32 // the creating event
	initial     int32 // the top-level state named by the machine's `initial`
	initialLeaf int32 // the leaf a new order starts in

	transitions []transition // as declared, in file order
	// table[leaf*len(events)+event] is the index of the effective transition
	// (the deepest declaration on the leaf or one of its ancestors), or -1.
	table []int32

	// historyMemo, indexed like table, holds for a transition into a state
	// the History map of exactly the slots the move sets (nil if it sets
	// none): the next History of every order whose History has no other
	// slot, shared by all of them (States never modify their maps), so
	// that a move through a history superstate allocates no map.
	historyMemo []map[string]string

	// hasTimers reports whether any state declares a timer; timedPath[l]
	// lists the states on leaf l's path (l and its ancestors) that declare
	// timers, innermost first (nil when the machine has none).
	hasTimers bool
	timedPath [][]int32

	leafNames  []string // leaves in file order
	leafOf     []int32  // node index -> index into leafNames, -1 for a superstate
	eventNames []string // events in file order

	// Precomputed rejection details (see details.go).
	detailUnknownOrder string
	detailInvalid      []string // indexed like table
}

// node is one state of the tree: a leaf or a superstate.
type node struct {
	name        string
	description string
	line        int
	parent      int32 // -1 for a top-level state
	children    []int32
	initial     int32 // initial child of a superstate, -1 if none
	initialLeaf int32 // the leaf entered when this state is entered, -1 if none
	terminal    bool  // declared terminal, or inside a terminal superstate
	// historyTarget reports whether some transition targets this
	// superstate's history; only such superstates get a history slot.
	historyTarget bool
	// timers are the timed transitions declared on this state, shortest
	// delay first.
	timers []int32

	detailOrderExists string
	detailTerminal    string
}

func (n *node) leaf() bool { return len(n.children) == 0 }

// event is one declared event type.
type event struct {
	name        string
	description string
	line        int
	creates     bool
	// marked reports whether some `within` guard refers to this event type,
	// so that accepting it records a mark in the order's state.
	marked bool
}

type targetKind uint8

const (
	toState   targetKind = iota // enter a state
	toHistory                   // enter the shallow history of a superstate
	toReject                    // explicit rejection
)

// transition is one declared transition: on an event, or a timer (after).
type transition struct {
	line   int
	source int32 // the state it is declared on (leaf or superstate)
	event  int32 // -1 for a timer
	// A timer: the delay after entering source (0 for an event), as
	// written, and in milliseconds.
	after     time.Duration
	afterText string
	afterMS   int64
	kind      targetKind
	target    int32  // toState: the state; toHistory: the superstate
	reason    string // toReject: the reason code
	guard     guard

	detailReject string // toReject
}

type guardKind uint8

const (
	guardNone guardKind = iota
	guardAttributePresent
	guardWithin
)

// guard is a condition a transition needs to be taken.
type guard struct {
	kind       guardKind
	attr       string        // attribute_present
	within     time.Duration // within
	withinText string        // within: the duration as written, e.g. "720h"
	withinMS   int64         // within, in milliseconds (marks are milliseconds)
	since      int32         // within: the event type
	text       string        // as written, e.g. "within: 720h since deliver_order"

	detailFailed string // attribute missing, or too late
	detailNoMark string // within: no accepted event of the type yet
}

// Name returns the machine's name (the `name` field of its file, if any).
func (m *Machine) Name() string { return m.name }

// Leaves returns the leaf states, where orders live, in file order.
func (m *Machine) Leaves() []string { return append([]string(nil), m.leafNames...) }

// States returns every state name, superstates included, in file order
// (depth first).
func (m *Machine) States() []string {
	out := make([]string, len(m.nodes))
	for i := range m.nodes {
		out[i] = m.nodes[i].name
	}
	return out
}

// EventTypes returns the declared event types in file order.
func (m *Machine) EventTypes() []string { return append([]string(nil), m.eventNames...) }

// CreatingEvent returns the event type that creates an order.
func (m *Machine) CreatingEvent() string { return m.events[m.creating].name }

// InitialState returns the leaf state a new order starts in.
func (m *Machine) InitialState() string { return m.nodes[m.initialLeaf].name }

// IsLeaf reports whether name is a leaf state of the machine.
func (m *Machine) IsLeaf(name string) bool {
	i, ok := m.states[name]
	return ok && m.nodes[i].leaf()
}

// IsTerminal reports whether state is terminal: an order there accepts no
// further events. Unknown states are not terminal.
func (m *Machine) IsTerminal(state string) bool {
	i, ok := m.states[state]
	return ok && m.nodes[i].terminal
}

// Parent returns the superstate directly containing state; ok is false for a
// top-level or unknown state.
func (m *Machine) Parent(state string) (parent string, ok bool) {
	i, found := m.states[state]
	if !found || m.nodes[i].parent < 0 {
		return "", false
	}
	return m.nodes[m.nodes[i].parent].name, true
}

// isAncestor reports whether a is b or one of b's ancestors.
func (m *Machine) isAncestor(a, b int32) bool {
	for ; b >= 0; b = m.nodes[b].parent {
		if b == a {
			return true
		}
	}
	return false
}

// childToward returns the child of super on the path down to n (n must be a
// proper descendant of super).
func (m *Machine) childToward(super, n int32) int32 {
	for m.nodes[n].parent != super {
		n = m.nodes[n].parent
	}
	return n
}
