package topology

// Rejection reason codes, as they appear on the rejections topic. The order in
// which Apply checks them is given in README.md ("Apply").
// An explicit rejection declared in a machine carries its own code instead.
const (
	ReasonUnknownEventType  = "unknown_event_type"
	ReasonDuplicateEvent    = "duplicate_event"
	ReasonUnknownOrder      = "unknown_order"
	ReasonOrderExists       = "order_exists"
	ReasonTerminalState     = "terminal_state"
	ReasonStaleEvent        = "stale_event"
	ReasonInvalidTransition = "invalid_transition"
	ReasonGuardFailed       = "guard_failed"
)

// Rejection reason codes that the processor gives, not Apply: an accepted
// transition whose records do not fit their topics (the processor checks
// each record against its topic's max.message.bytes) is refused instead,
// and the order keeps its state.
const (
	// ReasonStateTooLarge: the order's new state does not fit the
	// changelog topic.
	ReasonStateTooLarge = "state_too_large"
	// ReasonStatusTooLarge: the status change does not fit the status
	// topic.
	ReasonStatusTooLarge = "status_too_large"
)

// Outcome is the result of applying one event to one order.
type Outcome struct {
	// Accepted reports whether the event changed the order's state.
	Accepted bool
	// From is the leaf state before the event; "" when the order did not exist.
	From string
	// To is the leaf state after an accepted event.
	To string
	// FromLeaf and ToLeaf are From and To as indices into the machine's
	// Leaves, set only when the event is accepted (FromLeaf is -1 when it
	// created the order): a caller can count moves or look leaves up
	// without hashing their names.
	FromLeaf, ToLeaf int
	// Next is the order's new state after an accepted event. It may share
	// its Marks and History maps and its LastSequence pointer with the state
	// passed to Apply (copy-on-write, see Apply): treat them as read-only.
	Next State
	// Reason is the rejection reason code of a refused event.
	Reason string
	// Detail explains a rejection to a human (e.g. names the failed guard).
	Detail string
}
