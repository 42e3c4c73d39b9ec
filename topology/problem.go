package topology

import (
	"fmt"
	"strings"
)

// MaxEventNameBytes bounds an event's name: the decoders refuse a longer
// event type (avro.MaxEventTypeBytes), so an event of a machine with a
// longer name could never be processed.
const MaxEventNameBytes = 256

// ProblemKind classifies what is wrong with a machine file. Each kind is one
// validation rule (see README.md, "Validation"). The kinds are exported so
// that a program loading machines (an editor, a CI check) can tell the
// problems of a LoadError apart; `orderflow machine validate` prints them.
type ProblemKind string

// The validation rules.
const (
	// ProblemSyntax: the file is not YAML, a field has the wrong shape, a
	// field is unknown, or a required field is missing.
	ProblemSyntax ProblemKind = "syntax"
	// ProblemName: a state, event or reason name is malformed or declared twice.
	ProblemName ProblemKind = "name"
	// ProblemUnknownEvent: a transition or guard names an undeclared event.
	ProblemUnknownEvent ProblemKind = "unknown_event"
	// ProblemUnknownTarget: a transition, history or initial names an
	// unknown state, or a state of the wrong kind.
	ProblemUnknownTarget ProblemKind = "unknown_target"
	// ProblemMissingInitial: a superstate (or the machine) that can be
	// entered has no initial child.
	ProblemMissingInitial ProblemKind = "missing_initial"
	// ProblemUnreachable: no sequence of events leads to the state.
	ProblemUnreachable ProblemKind = "unreachable"
	// ProblemNoWayOut: a non-terminal leaf has no transition to another state.
	ProblemNoWayOut ProblemKind = "no_way_out"
	// ProblemDuplicateTransition: one state declares two transitions for one event.
	ProblemDuplicateTransition ProblemKind = "duplicate_transition"
	// ProblemUnknownGuard: a guard kind other than attribute_present or within.
	ProblemUnknownGuard ProblemKind = "unknown_guard"
	// ProblemBadGuard: a known guard kind with a malformed argument.
	ProblemBadGuard ProblemKind = "bad_guard"
	// ProblemCreatingEvent: no creating event, more than one, or a
	// transition declared for it (an existing order refuses it).
	ProblemCreatingEvent ProblemKind = "creating_event"
	// ProblemTerminalTransition: a transition or timer declared on a
	// terminal state, which accepts no events and is never left.
	ProblemTerminalTransition ProblemKind = "terminal_transition"
	// ProblemBadTimer: a timed transition (after) with a malformed or
	// non-positive delay, a second timer of the same delay on one state, a
	// reject or a guard, or a target inside the state declaring it.
	ProblemBadTimer ProblemKind = "bad_timer"
)

// Problem is one thing wrong with a machine file.
type Problem struct {
	Kind  ProblemKind
	Line  int    // 1-based line in the file; 0 when not tied to a line
	State string // the state concerned, if any
	Event string // the event concerned, if any
	Msg   string
}

// String formats the problem as "line N: state S: event E: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.State != "" {
		fmt.Fprintf(&b, "state %s: ", p.State)
	}
	if p.Event != "" {
		fmt.Fprintf(&b, "event %s: ", p.Event)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// LoadError is returned by Parse, Load and LoadFile when a machine file is
// invalid. It lists every problem found, sorted by line.
type LoadError struct {
	// Source names the file ("" when loaded from bytes or a reader).
	Source   string
	Problems []Problem
}

func (e *LoadError) Error() string {
	var b strings.Builder
	src := e.Source
	if src == "" {
		src = "machine"
	}
	if len(e.Problems) == 1 {
		fmt.Fprintf(&b, "%s: %s", src, e.Problems[0])
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %d problems:", src, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}
