package avro

import (
	"time"

	"github.com/orderflow/orderflow/topology"
)

// orderEvent is the Avro record orderflow.v1.OrderEvent: one event of one
// order, as producers write it to the input topic.
//
// Its fields mirror topology.Event exactly (names, types, order), so the two
// convert with a plain Go type conversion: topology.Event(e), orderEvent(ev).
type orderEvent struct {
	EventID    string            `avro:"event_id"`
	OrderID    string            `avro:"order_id"`
	Type       string            `avro:"type"`
	OccurredAt time.Time         `avro:"occurred_at"` // timestamp-millis
	Sequence   *int64            `avro:"sequence"`    // ["null","long"]
	Attributes map[string]string `avro:"attributes"`
}

// orderState is the Avro record orderflow.v1.OrderState: everything kept per
// order, as written to the state store and the changelog topic.
//
// Its fields mirror topology.State exactly, so the two convert with a plain
// Go type conversion.
type orderState struct {
	State          string            `avro:"state"`
	Version        int64             `avro:"version"`
	CreatedAt      time.Time         `avro:"created_at"` // timestamp-millis
	UpdatedAt      time.Time         `avro:"updated_at"` // timestamp-millis
	LastSequence   *int64            `avro:"last_sequence"`
	RecentEventIDs []string          `avro:"recent_event_ids"`
	Marks          map[string]int64  `avro:"marks"`
	History        map[string]string `avro:"history"`
	Timers         []topology.Clock  `avro:"-"`         // map<long>: hamba cannot map it to a slice (see stateWire)
	ClosedAt       *time.Time        `avro:"closed_at"` // ["null", timestamp-millis]
}

// stateWire is orderState as hamba encodes and decodes it: Timers as the
// map<long> the schema says (orderState keeps topology.State's sorted
// slice, which hamba cannot map). Only the slow paths use it: encoding
// without the hand-written encoder, and decoding a writer version other
// than the reader's (timersWire).
type stateWire struct {
	State          string            `avro:"state"`
	Version        int64             `avro:"version"`
	CreatedAt      time.Time         `avro:"created_at"`
	UpdatedAt      time.Time         `avro:"updated_at"`
	LastSequence   *int64            `avro:"last_sequence"`
	RecentEventIDs []string          `avro:"recent_event_ids"`
	Marks          map[string]int64  `avro:"marks"`
	History        map[string]string `avro:"history"`
	Timers         map[string]int64  `avro:"timers"`
	ClosedAt       *time.Time        `avro:"closed_at"`
}

// timersWire is the timers field of an OrderState alone: hamba skips the
// other fields.
type timersWire struct {
	Timers map[string]int64 `avro:"timers"`
}

func wireOfState(s *orderState) stateWire {
	w := stateWire{
		State: s.State, Version: s.Version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		LastSequence: s.LastSequence, RecentEventIDs: s.RecentEventIDs, Marks: s.Marks,
		History: s.History, ClosedAt: s.ClosedAt,
	}
	w.Timers = clockMap(s.Timers)
	return w
}

// clockMap returns timers as the map<long> the schema holds; nil when
// empty. clocksOf is its inverse.
func clockMap(timers []topology.Clock) map[string]int64 {
	if len(timers) == 0 {
		return nil
	}
	m := make(map[string]int64, len(timers))
	for _, c := range timers {
		m[c.State] = c.Entered
	}
	return m
}

// clocksOf returns a decoded map<long> of timers as State.Timers holds
// them: sorted by state; nil when empty.
func clocksOf(m map[string]int64) []topology.Clock {
	if len(m) == 0 {
		return nil
	}
	out := make([]topology.Clock, 0, len(m))
	for state, entered := range m {
		out = append(out, topology.Clock{State: state, Entered: entered})
	}
	topology.SortClocks(out)
	return out
}

// StatusChange is the Avro record orderflow.v1.StatusChange: one accepted
// transition, as written to the status topic.
type StatusChange struct {
	OrderID   string `avro:"order_id"`
	EventID   string `avro:"event_id"`
	EventType string `avro:"event_type"`
	// FromState is the leaf state before the event; nil when the event
	// created the order.
	FromState *string `avro:"from_state"`
	ToState   string  `avro:"to_state"`
	// Version is the order's version after the transition.
	Version    int64     `avro:"version"`
	OccurredAt time.Time `avro:"occurred_at"` // the event's time
	// ProcessedAt is the processor's wall clock. In JSON it is omitted when
	// zero; in Avro (a plain timestamp-millis) the zero time round-trips.
	ProcessedAt time.Time `avro:"processed_at"`
	// Timer is set when a timer made the transition (EventType is then
	// TimerEventType): the timer as the machine declares it, e.g. "placed
	// after 24h". Records written before timers existed decode with nil.
	Timer *string `avro:"timer"`
}

// TimerEventType is the event_type of a status change a timer made; its
// event_id is the timer's topology.Timer.ID.
const TimerEventType = "timer"

// Rejection is the Avro record orderflow.v1.Rejection: one refused event, as
// written to the rejections topic.
type Rejection struct {
	OrderID   string `avro:"order_id"`
	EventID   string `avro:"event_id"`
	EventType string `avro:"event_type"`
	// State is the order's leaf state when the event was refused; nil when
	// the order does not exist.
	State *string `avro:"state"`
	// Reason is a topology.Reason* code or a machine's explicit reason.
	Reason      string    `avro:"reason"`
	Detail      string    `avro:"detail"`
	OccurredAt  time.Time `avro:"occurred_at"`
	ProcessedAt time.Time `avro:"processed_at"` // see StatusChange.ProcessedAt
}
