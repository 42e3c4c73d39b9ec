package topology

import "time"

// RecentEventIDs is how many accepted event IDs an order remembers for
// duplicate detection (the "32-event duplicate window").
const RecentEventIDs = 32

// Event is one order event as the machine sees it. Its fields mirror the
// Avro OrderEvent record (package avro converts with a plain Go type
// conversion, so keep field names and types in step with avro/types.go).
type Event struct {
	EventID    string
	OrderID    string
	Type       string
	OccurredAt time.Time // event time, millisecond precision on the wire
	Sequence   *int64    // optional producer sequence; nil when absent
	Attributes map[string]string
}

// State is everything orderflow keeps per order. It is persisted by the
// statestore (as the Avro OrderState record) and written to the changelog.
// Its fields mirror the OrderState record's Go type in avro/types.go (a
// plain Go type conversion between the two must compile), so change both
// together.
//
// A State is an immutable value once built. Apply builds the next state
// copy-on-write, so the state it returns may share its Marks and History
// maps and its LastSequence pointer with the state it was given (and with
// every earlier state of the order), and its History with the states of
// other orders (a map the Machine keeps for a move), and its Timers with the
// state it was given. Never modify the maps, the RecentEventIDs and Timers
// slices (elements or, by appending, their backing arrays) or the
// pointees of a State you did not build yourself; to change one, assign a
// new map, slice or pointer to the field of your own copy of the State
// value. Decoders build fresh states and may fill them in as they go.
type State struct {
	// State is the current leaf state.
	State string
	// Version counts the accepted transitions so far (1 after creation).
	Version int64
	// CreatedAt is the occurred_at of the creating event.
	CreatedAt time.Time
	// UpdatedAt is the occurred_at of the last accepted event.
	UpdatedAt time.Time
	// LastSequence is the sequence of the last accepted event that carried
	// one; nil if none did.
	LastSequence *int64
	// RecentEventIDs holds the IDs of the last RecentEventIDs accepted
	// events, oldest first.
	RecentEventIDs []string
	// Marks maps an event type that some guard refers to onto the
	// occurred_at (Unix milliseconds) of the last accepted event of that type.
	Marks map[string]int64
	// History maps a superstate onto the child the order last left
	// (shallow history).
	History map[string]string
	// Timers holds a clock for every state on the order's path that
	// declares timed transitions: when the order entered it (Unix
	// milliseconds, event time); its timers are due that long after. Sorted
	// by state name, each state at most once; nil when no such state is on
	// the path. A slice, not a map: most moves give an order a new clock,
	// and a map would cost two allocations each time (see Slab).
	Timers []Clock
	// ClosedAt is the processor's wall clock when the transition into a
	// terminal state was processed; nil while the order is open. Apply never
	// sets it (it has no clock): the processor does, and retention reads it.
	ClosedAt *time.Time
}

// Clock is when an order entered a state that declares timed transitions.
type Clock struct {
	State   string
	Entered int64 // Unix milliseconds, event time
}

// ClockOf returns when the order entered state, and whether it holds a
// clock for it.
func (st *State) ClockOf(state string) (int64, bool) {
	for i := range st.Timers {
		if st.Timers[i].State == state {
			return st.Timers[i].Entered, true
		}
	}
	return 0, false
}

// SortClocks sorts clocks by state name, as State.Timers keeps them; a
// decoder calls it on what it read.
func SortClocks(clocks []Clock) {
	for i := 1; i < len(clocks); i++ { // insertion sort: one or two clocks
		for j := i; j > 0 && clocks[j].State < clocks[j-1].State; j-- {
			clocks[j], clocks[j-1] = clocks[j-1], clocks[j]
		}
	}
}
