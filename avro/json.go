package avro

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/topology"
)

// This file holds the JSON-lines formats of the CLI (README.md, "Running
// against a real cluster"; docs/design.md, "Record formats"):
// `produce` reads event lines, `tail` and `replay` write transition,
// rejection, dead-letter and state lines. One value is one line; no value
// contains a newline. Times are RFC 3339 in UTC.

// ErrInvalidJSON is matched (errors.Is) by every error of the JSON-lines
// parsers of this file.
var ErrInvalidJSON = errors.New("avro: invalid JSON line")

// Line kinds: the "kind" member of every output line, for programs that
// read the lines.
const (
	KindTransition = "transition"
	KindRejection  = "rejection"
	KindDLQ        = "dlq"
	KindState      = "state"
	KindTombstone  = "tombstone"
)

// ---- events ----

// eventJSON is an event line. occurred_at is kept raw: a line may give it
// as a string (RFC 3339, or digits) or as a number (epoch milliseconds).
type eventJSON struct {
	EventID    string            `json:"event_id"`
	OrderID    string            `json:"order_id"`
	Type       string            `json:"type"`
	OccurredAt json.RawMessage   `json:"occurred_at"`
	Sequence   *int64            `json:"sequence,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// EventFromJSON parses one event line:
//
//	{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z","sequence":1,"attributes":{"k":"v"}}
//
// event_id, order_id, type and occurred_at are required and must be
// non-empty; occurred_at is an RFC 3339 time or an integer count of
// milliseconds since the Unix epoch (a JSON number, or a string of digits); sequence (an integer) and attributes (an object of strings)
// are optional and may be null. Unknown members and anything after the
// object are refused, so a misspelt "sequence" is an error rather than a
// silently absent sequence. occurred_at is truncated to the millisecond, the
// precision of the Avro wire format, so an event replayed from JSON behaves
// exactly as the same event read from Kafka; it is returned in UTC. The
// event must be within the limits the binary decoders enforce (MaxIDBytes
// and the others, MinOccurredAtMillis..MaxOccurredAtMillis), with the same
// verdict: such an error matches ErrFieldLimit or ErrTimeRange (and
// ErrMalformed) too. Every error matches ErrInvalidJSON.
func EventFromJSON(line []byte) (topology.Event, error) {
	var j eventJSON
	if err := decodeStrict(line, &j); err != nil {
		return topology.Event{}, eventLineError(err)
	}
	occurred := string(j.OccurredAt)
	if occurred == "null" || occurred == `""` {
		occurred = ""
	}
	for _, f := range [...]struct{ name, v string }{
		{"event_id", j.EventID}, {"order_id", j.OrderID}, {"type", j.Type}, {"occurred_at", occurred},
	} {
		if f.v == "" {
			return topology.Event{}, fmt.Errorf("%w: %s is missing or empty", ErrInvalidJSON, f.name)
		}
	}
	at, err := parseOccurredAt(j.OccurredAt)
	if err != nil {
		return topology.Event{}, err
	}
	ev := topology.Event{
		EventID:    j.EventID,
		OrderID:    j.OrderID,
		Type:       j.Type,
		OccurredAt: at.Truncate(time.Millisecond),
		Sequence:   j.Sequence,
	}
	if len(j.Attributes) > 0 {
		ev.Attributes = j.Attributes
	}
	// Not len(line) for the size: JSON decoding can make a string longer
	// (an invalid UTF-8 byte becomes the three bytes of U+FFFD).
	if err := eventLimits((*orderEvent)(&ev), noSizeBound); err != nil {
		return topology.Event{}, fmt.Errorf("%w: %w: %s", ErrInvalidJSON, err.Kind, err.Detail)
	}
	return ev, nil
}

// eventFieldTypes say what each member of an event line holds, for errors
// that speak of the event rather than of Go types.
var eventFieldTypes = map[string]string{
	"event_id":   "a string",
	"order_id":   "a string",
	"type":       "a string",
	"sequence":   "an integer",
	"attributes": "an object of strings",
}

// eventLineError rewords the errors of encoding/json, which name Go types
// and struct fields, in the terms of an event line.
func eventLineError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		got := te.Value
		if n, ok := strings.CutPrefix(got, "number "); ok {
			got = n
		} else {
			got = "a JSON " + got
		}
		switch {
		case te.Field == "":
			return fmt.Errorf("%w: an event line must be a JSON object, not %s", ErrInvalidJSON, got)
		case te.Field == "attributes" && te.Type != nil && te.Type.Kind() == reflect.String:
			return fmt.Errorf("%w: attributes: every value must be a string, not %s", ErrInvalidJSON, got)
		}
		want := eventFieldTypes[te.Field]
		if want == "" {
			want = "of another type"
		}
		return fmt.Errorf("%w: %s must be %s, not %s", ErrInvalidJSON, te.Field, want, got)
	}
	if _, name, ok := strings.Cut(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%w: unknown field %s (an event has event_id, order_id, type, occurred_at, sequence, attributes)", ErrInvalidJSON, name)
	}
	return err
}

// parseOccurredAt reads occurred_at: an RFC 3339 string, or epoch
// milliseconds as a JSON integer or a string of digits.
func parseOccurredAt(raw json.RawMessage) (time.Time, error) {
	s := string(raw)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, fmt.Errorf("%w: occurred_at: %w", ErrInvalidJSON, err)
		}
		if s == "" || strings.Trim(s, "0123456789") != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return time.Time{}, fmt.Errorf("%w: occurred_at %q is not an RFC 3339 time or epoch milliseconds", ErrInvalidJSON, s)
			}
			return t.UTC(), nil
		}
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: occurred_at %s is not an RFC 3339 time or epoch milliseconds (an integer)", ErrInvalidJSON, s)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// EventToJSON renders ev as one event line (no trailing newline), the
// inverse of EventFromJSON. sequence is omitted when nil, attributes when
// empty.
func EventToJSON(ev *topology.Event) ([]byte, error) {
	at, err := json.Marshal(formatTime(ev.OccurredAt))
	if err != nil {
		return nil, err
	}
	return marshalLine(eventJSON{
		EventID:    ev.EventID,
		OrderID:    ev.OrderID,
		Type:       ev.Type,
		OccurredAt: at,
		Sequence:   ev.Sequence,
		Attributes: ev.Attributes,
	})
}

// ---- outcomes ----

type statusChangeJSON struct {
	Kind        string  `json:"kind"`
	OrderID     string  `json:"order_id"`
	EventID     string  `json:"event_id"`
	EventType   string  `json:"event_type"`
	From        *string `json:"from"`
	To          string  `json:"to"`
	Version     int64   `json:"version"`
	OccurredAt  string  `json:"occurred_at"`
	ProcessedAt string  `json:"processed_at,omitempty"`
	Timer       *string `json:"timer,omitempty"`
}

// MarshalJSON renders a transition line:
//
//	{"kind":"transition","order_id":..,"event_id":..,"event_type":..,"from":null|"..","to":..,"version":N,"occurred_at":".."}
//
// followed by "processed_at" only when ProcessedAt is not zero, and by
// "timer" only when a timer made the transition.
func (s StatusChange) MarshalJSON() ([]byte, error) {
	return marshalLine(statusChangeJSON{
		Kind:        KindTransition,
		OrderID:     s.OrderID,
		EventID:     s.EventID,
		EventType:   s.EventType,
		From:        s.FromState,
		To:          s.ToState,
		Version:     s.Version,
		OccurredAt:  formatTime(s.OccurredAt),
		ProcessedAt: formatOptTime(s.ProcessedAt),
		Timer:       s.Timer,
	})
}

// UnmarshalJSON parses a transition line. kind must be "transition";
// order_id, event_id, event_type, to and occurred_at are required. Unknown
// members are ignored (newer writers may add some).
func (s *StatusChange) UnmarshalJSON(b []byte) error {
	var j statusChangeJSON
	if err := decodeLenient(b, &j); err != nil {
		return err
	}
	if err := checkKind(j.Kind, KindTransition); err != nil {
		return err
	}
	if err := requireFields(
		"order_id", j.OrderID, "event_id", j.EventID, "event_type", j.EventType,
		"to", j.To, "occurred_at", j.OccurredAt); err != nil {
		return err
	}
	occ, err := parseTime("occurred_at", j.OccurredAt)
	if err != nil {
		return err
	}
	proc, err := parseOptTime("processed_at", j.ProcessedAt)
	if err != nil {
		return err
	}
	*s = StatusChange{
		OrderID: j.OrderID, EventID: j.EventID, EventType: j.EventType,
		FromState: j.From, ToState: j.To, Version: j.Version,
		OccurredAt: occ, ProcessedAt: proc, Timer: j.Timer,
	}
	return nil
}

type rejectionJSON struct {
	Kind        string  `json:"kind"`
	OrderID     string  `json:"order_id"`
	EventID     string  `json:"event_id"`
	EventType   string  `json:"event_type"`
	State       *string `json:"state"`
	Reason      string  `json:"reason"`
	Detail      string  `json:"detail"`
	OccurredAt  string  `json:"occurred_at"`
	ProcessedAt string  `json:"processed_at,omitempty"`
}

// MarshalJSON renders a rejection line:
//
//	{"kind":"rejection","order_id":..,"event_id":..,"event_type":..,"state":null|"..","reason":..,"detail":..,"occurred_at":".."}
//
// followed by "processed_at" only when ProcessedAt is not zero.
func (r Rejection) MarshalJSON() ([]byte, error) {
	return marshalLine(rejectionJSON{
		Kind:        KindRejection,
		OrderID:     r.OrderID,
		EventID:     r.EventID,
		EventType:   r.EventType,
		State:       r.State,
		Reason:      r.Reason,
		Detail:      r.Detail,
		OccurredAt:  formatTime(r.OccurredAt),
		ProcessedAt: formatOptTime(r.ProcessedAt),
	})
}

// UnmarshalJSON parses a rejection line. kind must be "rejection"; order_id,
// event_id, event_type, reason and occurred_at are required. Unknown members
// are ignored.
func (r *Rejection) UnmarshalJSON(b []byte) error {
	var j rejectionJSON
	if err := decodeLenient(b, &j); err != nil {
		return err
	}
	if err := checkKind(j.Kind, KindRejection); err != nil {
		return err
	}
	if err := requireFields(
		"order_id", j.OrderID, "event_id", j.EventID, "event_type", j.EventType,
		"reason", j.Reason, "occurred_at", j.OccurredAt); err != nil {
		return err
	}
	occ, err := parseTime("occurred_at", j.OccurredAt)
	if err != nil {
		return err
	}
	proc, err := parseOptTime("processed_at", j.ProcessedAt)
	if err != nil {
		return err
	}
	*r = Rejection{
		OrderID: j.OrderID, EventID: j.EventID, EventType: j.EventType,
		State: j.State, Reason: j.Reason, Detail: j.Detail,
		OccurredAt: occ, ProcessedAt: proc,
	}
	return nil
}

// StatusChangeFromOutcome builds the status record of an accepted event.
// FromState is nil when out.From is empty (the event created the order),
// else it points at out.From.
// processedAt may be zero (e.g. in a deterministic replay).
func StatusChangeFromOutcome(ev *topology.Event, out *topology.Outcome, processedAt time.Time) StatusChange {
	s := StatusChange{
		OrderID:     ev.OrderID,
		EventID:     ev.EventID,
		EventType:   ev.Type,
		ToState:     out.To,
		Version:     out.Next.Version,
		OccurredAt:  ev.OccurredAt,
		ProcessedAt: processedAt,
	}
	if out.From != "" {
		s.FromState = &out.From
	}
	return s
}

// StatusChangeFromTimer builds the status record of a fired timer of
// order orderID (out is Fire's outcome): its event_id is the timer's ID,
// its event_type TimerEventType, its occurred_at the time it was due.
func StatusChangeFromTimer(orderID string, tm *topology.Timer, out *topology.Outcome, processedAt time.Time) StatusChange {
	name := tm.String()
	return StatusChange{
		OrderID:     orderID,
		EventID:     tm.ID(),
		EventType:   TimerEventType,
		FromState:   &out.From,
		ToState:     out.To,
		Version:     out.Next.Version,
		OccurredAt:  tm.Due,
		ProcessedAt: processedAt,
		Timer:       &name,
	}
}

// RejectionFromOutcome builds the rejection record of a refused event.
// State is nil when out.From is empty (the order does not exist), else it
// points at out.From.
func RejectionFromOutcome(ev *topology.Event, out *topology.Outcome, processedAt time.Time) Rejection {
	r := Rejection{
		OrderID:     ev.OrderID,
		EventID:     ev.EventID,
		EventType:   ev.Type,
		Reason:      out.Reason,
		Detail:      out.Detail,
		OccurredAt:  ev.OccurredAt,
		ProcessedAt: processedAt,
	}
	if out.From != "" {
		r.State = &out.From
	}
	return r
}

// FromOutcome returns the StatusChange (out.Accepted) or the Rejection
// (otherwise) that records applying ev; it points at out.From. Both marshal to their JSON line with
// encoding/json. A zero processedAt is omitted from the JSON.
func FromOutcome(ev *topology.Event, out *topology.Outcome, processedAt time.Time) any {
	if out.Accepted {
		return StatusChangeFromOutcome(ev, out, processedAt)
	}
	return RejectionFromOutcome(ev, out, processedAt)
}

// ---- dead letters ----

// DeadLetter is a record of the dead-letter topic as `orderflow tail` shows
// it:
//
//	{"kind":"dlq","key":..,"error":..,"source_topic":..,"source_partition":N,"source_offset":N,"value_base64":"..","headers":{..}}
//
// Value holds the original (undecodable) bytes; it is rendered in standard
// base64 (null when nil). Headers are the record's own headers, by name
// (the member is left out when there are none).
type DeadLetter struct {
	Key             string
	Error           string
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	Value           []byte
	Headers         map[string]string
}

type deadLetterJSON struct {
	Kind            string            `json:"kind"`
	Key             string            `json:"key"`
	Error           string            `json:"error"`
	SourceTopic     string            `json:"source_topic"`
	SourcePartition int32             `json:"source_partition"`
	SourceOffset    int64             `json:"source_offset"`
	Value           []byte            `json:"value_base64"`
	Headers         map[string]string `json:"headers,omitempty"`
}

// MarshalJSON renders a dlq line.
func (d DeadLetter) MarshalJSON() ([]byte, error) {
	return marshalLine(deadLetterJSON{
		Kind: KindDLQ, Key: d.Key, Error: d.Error,
		SourceTopic: d.SourceTopic, SourcePartition: d.SourcePartition, SourceOffset: d.SourceOffset,
		Value: d.Value, Headers: d.Headers,
	})
}

// UnmarshalJSON parses a dlq line; kind must be "dlq".
func (d *DeadLetter) UnmarshalJSON(b []byte) error {
	var j deadLetterJSON
	if err := decodeLenient(b, &j); err != nil {
		return err
	}
	if err := checkKind(j.Kind, KindDLQ); err != nil {
		return err
	}
	*d = DeadLetter{
		Key: j.Key, Error: j.Error,
		SourceTopic: j.SourceTopic, SourcePartition: j.SourcePartition, SourceOffset: j.SourceOffset,
		Value: j.Value, Headers: j.Headers,
	}
	return nil
}

// ---- order state ----

// StateRecord is one record of the state changelog (or one answer of a
// state query) as a JSON line: the state of order OrderID, or a tombstone
// when State is nil.
//
//	{"kind":"state","order_id":"o1","state":"placed","version":1,"created_at":"..","updated_at":"..",
//	 "last_sequence":null|N,"recent_event_ids":[..],"marks":{"type":".."},"history":{"super":"child"},["timers":{"state":".."},]"closed_at":null|".."}
//	{"kind":"tombstone","order_id":"o1"}
//
// Marks (Unix milliseconds in topology.State) are rendered as RFC 3339
// times. Empty lists and maps are rendered as [] and {} and parsed back as
// nil.
type StateRecord struct {
	OrderID string
	State   *topology.State
	// NextTimer, when set, is rendered as "next_timer":{"timer":"placed
	// after 24h","due":".."}: the order's pending timer due first (an
	// answer to a state query sets it; changelog lines do not). Parsing
	// ignores it.
	NextTimer *topology.Timer
}

type nextTimerJSON struct {
	Timer string `json:"timer"`
	Due   string `json:"due"`
}

type stateJSON struct {
	Kind           string            `json:"kind"`
	OrderID        string            `json:"order_id"`
	State          string            `json:"state,omitempty"`
	Version        *int64            `json:"version,omitempty"`
	CreatedAt      string            `json:"created_at,omitempty"`
	UpdatedAt      string            `json:"updated_at,omitempty"`
	LastSequence   *int64            `json:"last_sequence"`
	RecentEventIDs []string          `json:"recent_event_ids"`
	Marks          map[string]string `json:"marks"`
	History        map[string]string `json:"history"`
	Timers         map[string]string `json:"timers,omitempty"`
	ClosedAt       *string           `json:"closed_at"`
	NextTimer      *nextTimerJSON    `json:"next_timer,omitempty"`
}

// tombstoneJSON keeps tombstone lines free of the state members.
type tombstoneJSON struct {
	Kind    string `json:"kind"`
	OrderID string `json:"order_id"`
}

// MarshalJSON renders a state or tombstone line.
func (r StateRecord) MarshalJSON() ([]byte, error) {
	if r.State == nil {
		return marshalLine(tombstoneJSON{Kind: KindTombstone, OrderID: r.OrderID})
	}
	st := r.State
	version := st.Version
	j := stateJSON{
		Kind:           KindState,
		OrderID:        r.OrderID,
		State:          st.State,
		Version:        &version,
		CreatedAt:      formatTime(st.CreatedAt),
		UpdatedAt:      formatTime(st.UpdatedAt),
		LastSequence:   st.LastSequence,
		RecentEventIDs: st.RecentEventIDs,
		Marks:          formatMillisMap(st.Marks),
		History:        st.History,
	}
	if j.RecentEventIDs == nil {
		j.RecentEventIDs = []string{}
	}
	if j.History == nil {
		j.History = map[string]string{}
	}
	if len(st.Timers) > 0 {
		j.Timers = formatMillisMap(clockMap(st.Timers))
	}
	if r.NextTimer != nil {
		j.NextTimer = &nextTimerJSON{Timer: r.NextTimer.String(), Due: formatTime(r.NextTimer.Due)}
	}
	if st.ClosedAt != nil {
		s := formatTime(*st.ClosedAt)
		j.ClosedAt = &s
	}
	return marshalLine(j)
}

// formatMillisMap renders a map of Unix milliseconds as RFC 3339 times.
func formatMillisMap(m map[string]int64) map[string]string {
	out := make(map[string]string, len(m))
	for k, ms := range m {
		out[k] = formatTime(time.UnixMilli(ms))
	}
	return out
}

// parseMillisMap is the inverse of formatMillisMap; nil when m is empty.
func parseMillisMap(field string, m map[string]string) (map[string]int64, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		t, err := parseTime(field+"."+k, v)
		if err != nil {
			return nil, err
		}
		out[k] = t.UnixMilli()
	}
	return out, nil
}

// UnmarshalJSON parses a state or tombstone line. A state line needs
// order_id, state, version, created_at and updated_at.
func (r *StateRecord) UnmarshalJSON(b []byte) error {
	var j stateJSON
	if err := decodeLenient(b, &j); err != nil {
		return err
	}
	if j.OrderID == "" {
		return fmt.Errorf("%w: order_id is missing or empty", ErrInvalidJSON)
	}
	switch j.Kind {
	case KindTombstone:
		*r = StateRecord{OrderID: j.OrderID}
		return nil
	case KindState:
	default:
		return fmt.Errorf("%w: kind %q, want %q or %q", ErrInvalidJSON, j.Kind, KindState, KindTombstone)
	}
	if err := requireFields("state", j.State, "created_at", j.CreatedAt, "updated_at", j.UpdatedAt); err != nil {
		return err
	}
	if j.Version == nil {
		return fmt.Errorf("%w: version is missing", ErrInvalidJSON)
	}
	st := &topology.State{State: j.State, Version: *j.Version, LastSequence: j.LastSequence}
	var err error
	if st.CreatedAt, err = parseTime("created_at", j.CreatedAt); err != nil {
		return err
	}
	if st.UpdatedAt, err = parseTime("updated_at", j.UpdatedAt); err != nil {
		return err
	}
	if len(j.RecentEventIDs) > 0 {
		st.RecentEventIDs = j.RecentEventIDs
	}
	if len(j.History) > 0 {
		st.History = j.History
	}
	if st.Marks, err = parseMillisMap("marks", j.Marks); err != nil {
		return err
	}
	timers, err := parseMillisMap("timers", j.Timers)
	if err != nil {
		return err
	}
	st.Timers = clocksOf(timers)
	if j.ClosedAt != nil {
		t, err := parseTime("closed_at", *j.ClosedAt)
		if err != nil {
			return err
		}
		st.ClosedAt = &t
	}
	*r = StateRecord{OrderID: j.OrderID, State: st}
	return nil
}

// ---- any line ----

// parseLine parses one line of any JSON-lines format by its "kind": it
// returns a StatusChange, Rejection, DeadLetter or StateRecord, or, for a
// line without a kind, a topology.Event (parsed by EventFromJSON).
func parseLine(line []byte) (any, error) {
	var k struct {
		Kind *string `json:"kind"`
	}
	if err := json.Unmarshal(line, &k); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJSON, err)
	}
	if k.Kind == nil {
		return EventFromJSON(line)
	}
	switch *k.Kind {
	case KindTransition:
		var s StatusChange
		return s, s.UnmarshalJSON(line)
	case KindRejection:
		var r Rejection
		return r, r.UnmarshalJSON(line)
	case KindDLQ:
		var d DeadLetter
		return d, d.UnmarshalJSON(line)
	case KindState, KindTombstone:
		var s StateRecord
		return s, s.UnmarshalJSON(line)
	}
	return nil, fmt.Errorf("%w: unknown kind %q", ErrInvalidJSON, *k.Kind)
}

// ---- helpers ----

// marshalLine is json.Marshal without HTML escaping (lines are for humans
// and tools, not for web pages) and without the Encoder's newline. Note
// that json.Marshal of a value re-escapes a MarshalJSON result; write lines
// with a json.Encoder with SetEscapeHTML(false) to keep <, > and & as is.
func marshalLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// decodeStrict decodes exactly one JSON value with no unknown members.
func decodeStrict(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrInvalidJSON)
	}
	return nil
}

// decodeLenient decodes one JSON value, ignoring unknown members.
func decodeLenient(line []byte, v any) error {
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJSON, err)
	}
	return nil
}

func checkKind(got, want string) error {
	if got != want {
		return fmt.Errorf("%w: kind %q, want %q", ErrInvalidJSON, got, want)
	}
	return nil
}

// requireFields takes name, value pairs and reports the first empty value.
func requireFields(nv ...string) error {
	for i := 0; i+1 < len(nv); i += 2 {
		if nv[i+1] == "" {
			return fmt.Errorf("%w: %s is missing or empty", ErrInvalidJSON, nv[i])
		}
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func formatOptTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q is not an RFC 3339 time", ErrInvalidJSON, field, s)
	}
	return t.UTC(), nil
}

func parseOptTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return parseTime(field, s)
}
