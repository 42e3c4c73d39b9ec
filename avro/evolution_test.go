package avro

import (
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"

	"github.com/orderflow/orderflow/topology"
)

// orderEventV2 is the Go type of testdata/order_event.v2.avsc: version 1
// plus an optional channel.
type orderEventV2 struct {
	EventID    string            `avro:"event_id"`
	OrderID    string            `avro:"order_id"`
	Type       string            `avro:"type"`
	OccurredAt time.Time         `avro:"occurred_at"`
	Sequence   *int64            `avro:"sequence"`
	Attributes map[string]string `avro:"attributes"`
	Channel    *string           `avro:"channel"`
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// v2Record returns a codec that knows v2 as a writer of OrderEvent, and the
// OrderEvent record codec of a v2 reader (knowing v1 and v2).
func v2Record(t *testing.T) (*Codec, *record[orderEventV2]) {
	t.Helper()
	v1, err := Schema(RecordOrderEvent)
	if err != nil {
		t.Fatal(err)
	}
	v2 := readFile(t, "testdata/order_event.v2.avsc")
	c := newTestCodec(t, WithWriterSchemas(v2))
	rec, err := newRecord(c.api, RecordOrderEvent, []string{v1, v2}, func(e *orderEventV2) string {
		return missingEvent(&orderEvent{EventID: e.EventID, OrderID: e.OrderID, Type: e.Type})
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func TestEvolutionV2WriterV1Reader(t *testing.T) {
	c, rec2 := v2Record(t)
	ev := sampleEvent()
	in := orderEventV2(struct {
		EventID    string            `avro:"event_id"`
		OrderID    string            `avro:"order_id"`
		Type       string            `avro:"type"`
		OccurredAt time.Time         `avro:"occurred_at"`
		Sequence   *int64            `avro:"sequence"`
		Attributes map[string]string `avro:"attributes"`
		Channel    *string           `avro:"channel"`
	}{ev.EventID, ev.OrderID, ev.Type, ev.OccurredAt, ev.Sequence, ev.Attributes, ptr("web")})
	b, err := encodeRecord(c, rec2, nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	v1Bytes, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[2:10]) == string(v1Bytes[2:10]) {
		t.Fatal("v2 payload carries the v1 fingerprint")
	}

	// The v1 reader that knows v2 drops channel and keeps the rest, on both
	// decoding paths.
	for _, fast := range []bool{true, false} {
		c.noFast = !fast
		var got topology.Event
		if err := c.DecodeEvent(b, &got); err != nil {
			t.Fatalf("fast=%v: %v", fast, err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("fast=%v: got %#v, want %#v", fast, got, ev)
		}
	}

	// A reader that has never heard of v2 cannot know its fingerprint.
	var got topology.Event
	if err := newTestCodec(t).DecodeEvent(b, &got); !errors.Is(err, ErrUnknownFingerprint) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown version: err %v, want ErrUnknownFingerprint", err)
	}
}

func TestEvolutionV1WriterV2Reader(t *testing.T) {
	c, rec2 := v2Record(t)
	ev := sampleEvent()
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	var got orderEventV2
	if err := decodeRecord(c, rec2, b, &got, false); err != nil {
		t.Fatal(err)
	}
	want := orderEventV2{ev.EventID, ev.OrderID, ev.Type, ev.OccurredAt, ev.Sequence, ev.Attributes, nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}

	// And v2 written, v2 read: channel survives.
	want.Channel = ptr("app")
	if b, err = encodeRecord(c, rec2, nil, &want); err != nil {
		t.Fatal(err)
	}
	got = orderEventV2{}
	if err := decodeRecord(c, rec2, b, &got, false); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func TestEvolutionIncompatibleRefused(t *testing.T) {
	bad := readFile(t, "testdata/order_event.incompatible.avsc")
	_, err := NewCodec(WithWriterSchemas(bad))
	if !errors.Is(err, ErrIncompatible) {
		t.Fatalf("err %v, want ErrIncompatible", err)
	}
	if !strings.Contains(err.Error(), "OrderEvent") || !strings.Contains(err.Error(), "sequence") {
		t.Fatalf("error does not say what is incompatible: %v", err)
	}

	// A new required field without default cannot read old data either.
	v1, _ := Schema(RecordOrderEvent)
	required := strings.Replace(v1, `{"name": "event_id", "type": "string"`,
		`{"name": "tenant", "type": "string"}, {"name": "event_id", "type": "string"`, 1)
	if required == v1 {
		t.Fatal("test schema edit did not apply")
	}
	c := newTestCodec(t)
	if _, err := newRecord(c.api, RecordOrderEvent, []string{v1, required}, func(*orderEvent) string { return "" }, nil); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("required field added: err %v, want ErrIncompatible", err)
	}

	// A writer schema of no known record is refused by name.
	if _, err := NewCodec(WithWriterSchemas(`{"type":"record","name":"Payment","namespace":"other","fields":[]}`)); err == nil || !strings.Contains(err.Error(), "other.Payment") {
		t.Fatalf("foreign record: err %v", err)
	}
}

// Knowing more writer versions keeps the fast decoders of the reader's own
// version (the fuzz targets compare them with hamba's only if they run).
func TestFastDecodersEnabled(t *testing.T) {
	for _, c := range []*Codec{newTestCodec(t), newTestCodec(t, WithWriterSchemas(readFile(t, "testdata/order_event.v2.avsc")))} {
		if c.event.fast == nil || c.event.strict == nil || c.state.fast == nil {
			t.Fatal("fast decoders disabled")
		}
		if !c.state.fastEnc || !c.status.fastEnc || !c.reject.fastEnc {
			t.Fatal("fast encoders disabled")
		}
		ev := sampleEvent()
		b, _ := c.EncodeEvent(nil, &ev)
		if ws := c.event.byFP[binary.LittleEndian.Uint64(b[2:10])]; ws == nil || !ws.exact {
			t.Fatal("the reader's own version is not marked exact")
		}
	}
}

// Records written before timers existed (OrderState and StatusChange
// version 1) still decode: the timers of a state are empty, a status
// change has no timer, and closed_at is still found.
func TestEvolutionPreTimerRecords(t *testing.T) {
	c := newTestCodec(t)
	st := sampleState()
	st.Timers = nil
	// hamba writes the fields version 1 has; stateWire's Timers is nil.
	b := frameV1(t, "schemas/order_state.v1.avsc", wireOfState((*orderState)(&st)))
	var got topology.State
	if err := c.DecodeState(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("v1 state decoded as %#v, want %#v", got, st)
	}
	if ms, closed, err := c.StateClosedAt(b); err != nil || !closed || ms != st.ClosedAt.UnixMilli() {
		t.Fatalf("v1 closed_at: %d %v %v", ms, closed, err)
	}

	sc := sampleStatus()
	type statusV1 struct {
		OrderID     string    `avro:"order_id"`
		EventID     string    `avro:"event_id"`
		EventType   string    `avro:"event_type"`
		FromState   *string   `avro:"from_state"`
		ToState     string    `avro:"to_state"`
		Version     int64     `avro:"version"`
		OccurredAt  time.Time `avro:"occurred_at"`
		ProcessedAt time.Time `avro:"processed_at"`
	}
	b = frameV1(t, "schemas/status_change.v1.avsc", statusV1{sc.OrderID, sc.EventID, sc.EventType, sc.FromState,
		sc.ToState, sc.Version, sc.OccurredAt, sc.ProcessedAt})
	var gotSC StatusChange
	if err := c.DecodeStatusChange(b, &gotSC); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotSC, sc) {
		t.Fatalf("v1 status change decoded as %#v, want %#v", gotSC, sc)
	}

	// And the current version carries the timer.
	sc.EventType, sc.Timer = TimerEventType, ptr("placed after 24h")
	if b, err := c.EncodeStatusChange(nil, &sc); err != nil {
		t.Fatal(err)
	} else if gotSC = (StatusChange{}); c.DecodeStatusChange(b, &gotSC) != nil || !reflect.DeepEqual(gotSC, sc) {
		t.Fatalf("v2 status change decoded as %#v, want %#v", gotSC, sc)
	}
}

// frameV1 encodes v with the schema file of this package's testdata or
// schemas, framed as single-object encoding, as a writer of that version did.
func frameV1(t *testing.T, file string, v any) []byte {
	t.Helper()
	text := readFile(t, file)
	s, err := parseSchema(text)
	if err != nil {
		t.Fatal(err)
	}
	body, err := hamba.Marshal(s, v)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := fingerprints(text, s)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{soeMagic0, soeMagic1, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint64(b[2:], fp[0])
	return append(b, body...)
}
