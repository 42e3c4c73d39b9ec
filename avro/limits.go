package avro

import (
	"fmt"
	"time"

	"github.com/orderflow/orderflow/topology"
)

// Limits of an OrderEvent's fields. The decoders (binary, every schema
// version) and EventFromJSON enforce them identically, after the required
// fields: an event over a limit is ErrFieldLimit, one dated outside the
// range is ErrTimeRange, both malformed (a dead letter in the processor, a
// dlq line in `orderflow replay`, a refused line in `orderflow produce`).
// They are exported for producers, whose events must stay within them.
//
// Why these values: an order remembers the IDs of its last
// topology.RecentEventIDs accepted events, so the event_id bound times 32
// bounds what a state can grow to (8 KiB of IDs; see MaxEncodedSizes), and
// every record written for an in-limits event stays far below Kafka's
// default 1 MiB message size. 256 bytes holds any UUID, ULID or composite
// business key several times over. order_id is the Kafka key and the state
// store's key, and the event type is a machine's name. Attributes are
// guard inputs (attribute_present) and are not kept in the state, so they
// only need a bound that keeps one event's decoded memory small.
const (
	// MaxIDBytes bounds event_id and order_id, in bytes.
	MaxIDBytes = 256
	// MaxEventTypeBytes bounds the event type, in bytes.
	MaxEventTypeBytes = topology.MaxEventNameBytes
	// MaxAttributes bounds the number of attributes of one event.
	MaxAttributes = 64
	// MaxAttributeKeyBytes bounds each attribute key, in bytes.
	MaxAttributeKeyBytes = 256
	// MaxAttributesBytes bounds the attributes' keys and values together,
	// in bytes.
	MaxAttributesBytes = 64 << 10
)

// The range of occurred_at, in Unix milliseconds (the wire's
// timestamp-millis): 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z,
// both included, checked by the same decoders as the field limits and,
// like them, exported for producers.
//
// Why this range: it is every instant RFC 3339 can write in UTC (a
// four-digit year; year 0 is left out, as Go's zero time.Time, 0001-01-01,
// is its lower end), so every event time `orderflow tail` and `replay`
// print is one `produce` and `replay` read back as the same instant. The
// long on the wire could otherwise say 2^62 ms, a year in the hundreds of
// millions that no JSON line can carry. Any two times in the range are less
// than 2^49 ms apart, so differences of event times cannot overflow.
const (
	MinOccurredAtMillis int64 = -62135596800000 // 0001-01-01T00:00:00Z
	MaxOccurredAtMillis int64 = 253402300799999 // 9999-12-31T23:59:59.999Z
)

// Kinds of a decoded event that is over its limits; both match ErrMalformed.
// Exported so that callers can tell them from other malformed input
// (errors.Is).
var (
	// ErrFieldLimit: a field of the event is over its limit (MaxIDBytes and
	// the others); the error's detail names the field and the limit.
	ErrFieldLimit = malformedKind("field over its limit")
	// ErrTimeRange: occurred_at is outside MinOccurredAtMillis ..
	// MaxOccurredAtMillis.
	ErrTimeRange = malformedKind("occurred_at out of range")
)

var (
	minOccurredAt = time.UnixMilli(MinOccurredAtMillis).UTC()
	maxOccurredAt = time.UnixMilli(MaxOccurredAtMillis).UTC()
)

// CheckEvent reports whether ev is within the limits the decoders enforce:
// nil, or a *DecodeError of kind ErrFieldLimit or ErrTimeRange (matching
// ErrMalformed) that names the field and the limit. It does not check the
// required fields. Exported for producers that build events in Go: they
// call it before EncodeEvent, which does not check the limits, so that
// tests can write events the decoders refuse.
func CheckEvent(ev *topology.Event) error {
	if err := eventLimits((*orderEvent)(ev), noSizeBound); err != nil {
		return err
	}
	return nil
}

// eventLimits returns the first limit e is over, or nil. size bounds the
// bytes e's strings were decoded from: no string is longer, so below the
// smallest string limit those limits hold without being looked at (the
// decoders' common case, which costs two integer comparisons and a map
// length, and takes no call).
func eventLimits(e *orderEvent, size int) *DecodeError {
	if sec := e.OccurredAt.Unix(); sec >= minOccurredAtSec && sec <= maxOccurredAtSec &&
		len(e.Attributes) <= MaxAttributes && size <= minStringLimit {
		return nil
	}
	return eventLimitsAll(e)
}

// minStringLimit is the smallest limit of a string of an event.
const minStringLimit = min(MaxIDBytes, MaxEventTypeBytes, MaxAttributeKeyBytes)

// The range of occurred_at in whole seconds: as the range starts at a
// whole second and ends at the last millisecond of one, a time is in range
// exactly when its second is.
const (
	minOccurredAtSec = MinOccurredAtMillis / 1000
	maxOccurredAtSec = MaxOccurredAtMillis / 1000
)

// eventLimitsAll is eventLimits looking at every field.
func eventLimitsAll(e *orderEvent) *DecodeError {
	if ms := unixMillis(e.OccurredAt); ms < MinOccurredAtMillis || ms > MaxOccurredAtMillis {
		return limitError(ErrTimeRange, fmt.Sprintf("occurred_at %s (%d ms since 1970) is outside %s..%s",
			e.OccurredAt.UTC().Format(time.RFC3339Nano), ms,
			minOccurredAt.Format(time.RFC3339Nano), maxOccurredAt.Format(time.RFC3339Nano)))
	}
	if n := len(e.Attributes); n > MaxAttributes {
		return limitError(ErrFieldLimit, fmt.Sprintf("attributes has %d entries, max %d", n, MaxAttributes))
	}
	for _, f := range [...]struct {
		name string
		n    int
		max  int
	}{
		{"event_id", len(e.EventID), MaxIDBytes},
		{"order_id", len(e.OrderID), MaxIDBytes},
		{"type", len(e.Type), MaxEventTypeBytes},
	} {
		if f.n > f.max {
			return limitError(ErrFieldLimit, fmt.Sprintf("%s is %d bytes, max %d", f.name, f.n, f.max))
		}
	}
	total := 0
	for k, v := range e.Attributes {
		if len(k) > MaxAttributeKeyBytes {
			return limitError(ErrFieldLimit, fmt.Sprintf("an attribute key is %d bytes, max %d", len(k), MaxAttributeKeyBytes))
		}
		total += len(k) + len(v)
	}
	if total > MaxAttributesBytes {
		return limitError(ErrFieldLimit, fmt.Sprintf("attributes are %d bytes (keys and values), max %d", total, MaxAttributesBytes))
	}
	return nil
}

// noSizeBound is eventLimits' size for an event whose strings have no
// known bound.
const noSizeBound = int(^uint(0) >> 1)

func limitError(kind error, detail string) *DecodeError {
	return &DecodeError{Record: RecordOrderEvent, Offset: -1, Kind: kind, Detail: detail}
}

// EncodedSizes are upper bounds of the framed records (header included,
// either framing) that the processor writes for events within the limits.
type EncodedSizes struct {
	// State bounds an OrderState the machine builds: its leaf name, the
	// IDs of the last topology.RecentEventIDs events, a mark per event type
	// a within guard names, a history slot per superstate some transition
	// returns to, and the fixed-size fields.
	State int
	// StatusChange bounds a StatusChange.
	StatusChange int
	// Rejection bounds a Rejection (its reason and detail are the
	// machine's, or built-in).
	Rejection int
}

// Max returns the largest of the three: the least max record size
// (WithMaxRecordSize) of a codec that writes them.
func (s EncodedSizes) Max() int { return max(s.State, s.StatusChange, s.Rejection) }

// MaxEncodedSizes returns the largest records the processor can write, with
// machine m, for events within the limits above: the output topics (and the
// changelog) must take messages of that size (max.message.bytes), and a
// codec's max record size must be at least as large.
//
// The bound covers states m builds. A state written under another machine
// keeps that machine's marks and history slots (and may hold event IDs
// decoded before these limits existed), so it may be larger.
func MaxEncodedSizes(m *topology.Machine) EncodedSizes {
	const long = 10 // the longest varint
	b := m.Bounds()
	str := func(n int) int { return longLen(int64(n)) + n }
	// A non-empty array or map: one block (its count), then the 0 that
	// ends it; an empty one is the 0 alone.
	block := func(count, each int) int {
		if count == 0 {
			return 1
		}
		return longLen(int64(count)) + count*each + 1
	}
	optStr := func(n int) int { return 1 + str(n) }
	id, typ := str(MaxIDBytes), str(MaxEventTypeBytes)
	return EncodedSizes{
		State: soeHeaderLen +
			str(b.LeafName) + // state
			3*long + // version, created_at, updated_at
			1 + long + // last_sequence
			block(topology.RecentEventIDs, str(MaxIDBytes)) +
			block(b.Marks, str(b.MarkName)+long) +
			block(b.History, str(b.HistoryKey)+str(b.HistoryValue)) +
			1 + long, // closed_at
		StatusChange: soeHeaderLen +
			2*id + str(min(b.EventName, MaxEventTypeBytes)) + // only a declared type is accepted
			optStr(b.LeafName) + str(b.LeafName) + // from_state, to_state
			3*long, // version, occurred_at, processed_at
		Rejection: soeHeaderLen +
			2*id + typ +
			optStr(b.LeafName) + // state
			str(b.Reason) + str(b.Detail) +
			2*long, // occurred_at, processed_at
	}
}
