package avro

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/topology"
)

func TestEventFromJSON(t *testing.T) {
	ev, err := EventFromJSON([]byte(`{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T01:00:00.1234+01:00","sequence":3,"attributes":{"tracking_number":"1Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := topology.Event{
		EventID: "e1", OrderID: "o1", Type: "place_order",
		OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 123_000_000, time.UTC),
		Sequence:   ptr(int64(3)),
		Attributes: map[string]string{"tracking_number": "1Z"},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("got %#v\nwant %#v", ev, want)
	}

	// Optional members may be absent or null.
	for _, line := range []string{
		`{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z"}`,
		`{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z","sequence":null,"attributes":null}`,
		` {"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z","attributes":{}} ` + "\n",
	} {
		ev, err := EventFromJSON([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if ev.Sequence != nil || ev.Attributes != nil {
			t.Fatalf("%s: got %#v", line, ev)
		}
	}
}

func TestEventFromJSONRefuses(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{``, "EOF"},
		{`not json`, "invalid character"},
		{`[]`, "an event line must be a JSON object, not a JSON array"},
		{`{"order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z"}`, "event_id"},
		{`{"event_id":"","order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z"}`, "event_id"},
		{`{"event_id":"e","type":"t","occurred_at":"2026-01-01T00:00:00Z"}`, "order_id"},
		{`{"event_id":"e","order_id":"o1","occurred_at":"2026-01-01T00:00:00Z"}`, "type"},
		{`{"event_id":"e","order_id":"o1","type":"t"}`, "occurred_at"},
		{`{"event_id":"e","order_id":"o1","type":"t","occurred_at":"yesterday"}`, "RFC 3339"},
		{`{"event_id":"e","order_id":"o1","type":"t","occurred_at":"2026-01-01"}`, "RFC 3339"},
		{`{"event_id":"e","order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z","sequence":1.5}`, "sequence"},
		{`{"event_id":"e","order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z","sequence":"1"}`, "sequence"},
		{`{"event_id":"e","order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z","attributes":{"a":1}}`, "attributes"},
		{`{"event_id":"e","order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z","seqence":1}`, "seqence"},
		{`{"event_id":"e","order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z"} {}`, "after"},
		{`{"event_id":1,"order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z"}`, "event_id"},
	} {
		_, err := EventFromJSON([]byte(tc.line))
		if err == nil || !errors.Is(err, ErrInvalidJSON) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want ErrInvalidJSON mentioning %q", tc.line, err, tc.want)
		}
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	for _, ev := range []topology.Event{
		sampleEvent(),
		{EventID: "e", OrderID: "o", Type: "place_order", OccurredAt: t0},
	} {
		b, err := EventToJSON(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(string(b), '\n') {
			t.Fatalf("line contains a newline: %s", b)
		}
		got, err := EventFromJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("%s:\n got %#v\nwant %#v", b, got, ev)
		}
	}
	ev := topology.Event{EventID: "e1", OrderID: "o1", Type: "place_order", OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Sequence: ptr(int64(1))}
	b, _ := EventToJSON(&ev)
	if want := `{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z","sequence":1}`; string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestOutcomeLines(t *testing.T) {
	ev := topology.Event{EventID: "e1", OrderID: "o1", Type: "place_order", OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	created := topology.Outcome{Accepted: true, To: "placed", Next: topology.State{State: "placed", Version: 1}}
	moved := topology.Outcome{Accepted: true, From: "placed", To: "paid", Next: topology.State{State: "paid", Version: 2}}
	refusedNew := topology.Outcome{Reason: topology.ReasonUnknownOrder, Detail: "no such order"}
	refused := topology.Outcome{From: "placed", Reason: topology.ReasonInvalidTransition, Detail: "ship_order in placed"}
	proc := time.Date(2026, 1, 1, 0, 0, 1, 500_000_000, time.UTC)

	for _, tc := range []struct {
		out  topology.Outcome
		proc time.Time
		want string
	}{
		{created, time.Time{}, `{"kind":"transition","order_id":"o1","event_id":"e1","event_type":"place_order","from":null,"to":"placed","version":1,"occurred_at":"2026-01-01T00:00:00Z"}`},
		{moved, proc, `{"kind":"transition","order_id":"o1","event_id":"e1","event_type":"place_order","from":"placed","to":"paid","version":2,"occurred_at":"2026-01-01T00:00:00Z","processed_at":"2026-01-01T00:00:01.5Z"}`},
		{refusedNew, time.Time{}, `{"kind":"rejection","order_id":"o1","event_id":"e1","event_type":"place_order","state":null,"reason":"unknown_order","detail":"no such order","occurred_at":"2026-01-01T00:00:00Z"}`},
		{refused, proc, `{"kind":"rejection","order_id":"o1","event_id":"e1","event_type":"place_order","state":"placed","reason":"invalid_transition","detail":"ship_order in placed","occurred_at":"2026-01-01T00:00:00Z","processed_at":"2026-01-01T00:00:01.5Z"}`},
	} {
		v := FromOutcome(&ev, &tc.out, tc.proc)
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("got  %s\nwant %s", b, tc.want)
			continue
		}
		// And back.
		back, err := parseLine(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Errorf("%s: parsed back as %#v, want %#v", b, back, v)
		}
	}
	// Called directly (or through an Encoder with SetEscapeHTML(false)),
	// MarshalJSON leaves <, > and & alone; json.Marshal escapes them.
	html := RejectionFromOutcome(&ev, &topology.Outcome{Reason: "r", Detail: "a<b & c>d"}, time.Time{})
	if b, _ := html.MarshalJSON(); !strings.Contains(string(b), `"detail":"a<b & c>d"`) {
		t.Errorf("MarshalJSON escaped HTML: %s", b)
	}
	if _, ok := FromOutcome(&ev, &created, proc).(StatusChange); !ok {
		t.Fatal("accepted outcome is not a StatusChange")
	}
	if _, ok := FromOutcome(&ev, &refused, proc).(Rejection); !ok {
		t.Fatal("refused outcome is not a Rejection")
	}
}

func TestOutcomeLinesRefuse(t *testing.T) {
	var s StatusChange
	for _, line := range []string{
		`{"kind":"rejection","order_id":"o1","event_id":"e1","event_type":"t","to":"x","version":1,"occurred_at":"2026-01-01T00:00:00Z"}`,
		`{"kind":"transition","order_id":"o1","event_id":"e1","event_type":"t","version":1,"occurred_at":"2026-01-01T00:00:00Z"}`,
		`{"kind":"transition","order_id":"o1","event_id":"e1","event_type":"t","to":"x","version":1,"occurred_at":"now"}`,
		`{"kind":"transition","order_id":"o1","event_id":"e1","event_type":"t","to":"x","version":1,"occurred_at":"2026-01-01T00:00:00Z","processed_at":"later"}`,
	} {
		if err := json.Unmarshal([]byte(line), &s); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("%s: err %v, want ErrInvalidJSON", line, err)
		}
	}
	var r Rejection
	if err := json.Unmarshal([]byte(`{"kind":"rejection","order_id":"o1","event_id":"e1","event_type":"t","state":null,"detail":"","occurred_at":"2026-01-01T00:00:00Z"}`), &r); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("rejection without reason: err %v", err)
	}
	if _, err := parseLine([]byte(`{"kind":"bogus"}`)); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("unknown kind: err %v", err)
	}
}

func TestDeadLetterLine(t *testing.T) {
	d := DeadLetter{Key: "o1", Error: "avro: decode OrderEvent: truncated", SourceTopic: "orders.events", SourcePartition: 3, SourceOffset: 42, Value: []byte{0xC3, 0x01, 0xff}}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"dlq","key":"o1","error":"avro: decode OrderEvent: truncated","source_topic":"orders.events","source_partition":3,"source_offset":42,"value_base64":"wwH/"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	back, err := parseLine(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, d) {
		t.Fatalf("got %#v, want %#v", back, d)
	}
}

func TestStateLine(t *testing.T) {
	st := sampleState()
	rec := StateRecord{OrderID: "o-42", State: &st}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`"kind":"state"`, `"order_id":"o-42"`, `"state":"shipped"`, `"version":5`,
		`"last_sequence":7`, `"marks":{"pay_order":"2026-01-02T03:03:05.678Z"}`, `"history":{"fulfilment":"packing"}`,
		`"closed_at":"2026-01-02T03:04:06.678Z"`} {
		if !strings.Contains(string(b), part) {
			t.Errorf("%s lacks %s", b, part)
		}
	}
	back, err := parseLine(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rec) {
		t.Fatalf("got %#v\nwant %#v", back, rec)
	}

	fresh := topology.State{State: "placed", Version: 1, CreatedAt: t0, UpdatedAt: t0}
	b, err = json.Marshal(StateRecord{OrderID: "o1", State: &fresh})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"state","order_id":"o1","state":"placed","version":1,"created_at":"2026-01-02T03:04:05.678Z","updated_at":"2026-01-02T03:04:05.678Z","last_sequence":null,"recent_event_ids":[],"marks":{},"history":{},"closed_at":null}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var r StateRecord
	if err := json.Unmarshal(b, &r); err != nil || !reflect.DeepEqual(*r.State, fresh) {
		t.Fatalf("got %#v, %v; want %#v", r.State, err, fresh)
	}

	b, _ = json.Marshal(StateRecord{OrderID: "o1"})
	if want := `{"kind":"tombstone","order_id":"o1"}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	if err := json.Unmarshal(b, &r); err != nil || r.State != nil || r.OrderID != "o1" {
		t.Fatalf("tombstone parsed as %#v, %v", r, err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"state","order_id":"o1","state":"x","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`), &r); !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("state without version: err %v", err)
	}
}

// An event line's errors speak of the line's fields and JSON types, never of
// Go's (a user writes JSON, not Go).
func TestEventFromJSONErrorsNameFields(t *testing.T) {
	const base = `"event_id":"e","order_id":"o1","type":"t"`
	for _, tc := range []struct{ line, want string }{
		{`{` + base + `,"occurred_at":"2026-01-01T00:00:00Z","sequence":"1"}`, "sequence must be an integer, not a JSON string"},
		{`{` + base + `,"occurred_at":"2026-01-01T00:00:00Z","sequence":1.5}`, "sequence must be an integer, not 1.5"},
		{`{` + base + `,"occurred_at":"2026-01-01T00:00:00Z","attributes":{"a":1}}`, "attributes: every value must be a string, not a JSON number"},
		{`{` + base + `,"occurred_at":"2026-01-01T00:00:00Z","attributes":[]}`, "attributes must be an object of strings, not a JSON array"},
		{`{"event_id":1,"order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00Z"}`, "event_id must be a string, not a JSON number"},
		{`{` + base + `,"occurred_at":"2026-01-01T00:00:00Z","seqence":1}`, `unknown field "seqence"`},
		{`"e1"`, "an event line must be a JSON object, not a JSON string"},
		{`{` + base + `,"occurred_at":1.5}`, "occurred_at 1.5 is not an RFC 3339 time or epoch milliseconds"},
		{`{` + base + `,"occurred_at":true}`, "occurred_at true is not an RFC 3339 time or epoch milliseconds"},
		{`{` + base + `,"occurred_at":null}`, "occurred_at is missing or empty"},
	} {
		_, err := EventFromJSON([]byte(tc.line))
		if err == nil || !errors.Is(err, ErrInvalidJSON) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one saying %q", tc.line, err, tc.want)
			continue
		}
		for _, goTerm := range []string{"Go ", "int64", "eventLineJSON", "map[", "struct"} {
			if strings.Contains(err.Error(), goTerm) {
				t.Errorf("%s: error %q speaks of Go (%q)", tc.line, err, goTerm)
			}
		}
	}
}

// occurred_at may be epoch milliseconds, as a number or a string of digits.
func TestEventFromJSONEpochMillis(t *testing.T) {
	want := time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC)
	for _, at := range []string{`1767225600123`, `"1767225600123"`, `"2026-01-01T00:00:00.123Z"`} {
		ev, err := EventFromJSON([]byte(`{"event_id":"e","order_id":"o1","type":"t","occurred_at":` + at + `}`))
		if err != nil || !ev.OccurredAt.Equal(want) || ev.OccurredAt.Location() != time.UTC {
			t.Errorf("occurred_at %s: %v at %v, want %v", at, err, ev.OccurredAt, want)
		}
	}
	// Beyond the range of the wire format: the limit's error, as for times.
	_, err := EventFromJSON([]byte(`{"event_id":"e","order_id":"o1","type":"t","occurred_at":-99999999999999999}`))
	if !errors.Is(err, ErrTimeRange) {
		t.Errorf("far past epoch millis: %v, want ErrTimeRange", err)
	}
}
