package avro

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/topology"
)

// Each decoder fuzz target checks: no panic (decodeRecord recovers one, so
// a recovered panic fails the target too); every error is a malformed-input
// error; what decodes re-encodes and decodes to the same value; and the
// hand-written fast decoders agree with hamba's.

func checkFuzzErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error does not match ErrMalformed: %v", err)
	}
	if strings.Contains(err.Error(), "panic") {
		t.Fatalf("decoder panicked: %v", err)
	}
}

func fuzzCodecs(t *testing.F) (fast, slow *Codec) {
	fast = newTestCodec(t, WithMaxRecordSize(64<<10))
	slow = newTestCodec(t, WithMaxRecordSize(64<<10))
	slow.noFast = true
	return fast, slow
}

// fuzzDecoder runs the common checks for one record type.
func fuzzDecoder[T any](f *testing.F, seeds [][]byte,
	decode func(*Codec, []byte, *T) error, encode func(*Codec, []byte, *T) ([]byte, error)) {
	for _, s := range seeds {
		f.Add(s)
		for i := 0; i < len(s); i += 7 {
			f.Add(s[:i])
		}
	}
	fast, slow := fuzzCodecs(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v1, v2 T
		err1 := decode(fast, b, &v1)
		err2 := decode(slow, b, &v2)
		checkFuzzErr(t, err1)
		checkFuzzErr(t, err2)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("fast and hamba decoders disagree: %v vs %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if !reflect.DeepEqual(v1, v2) {
			t.Fatalf("fast and hamba decoders disagree:\n%#v\n%#v", v1, v2)
		}
		again, err := encode(fast, nil, &v1)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var v3 T
		if err := decode(fast, again, &v3); err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if !reflect.DeepEqual(v1, v3) {
			t.Fatalf("round trip changed the value:\n%#v\n%#v", v1, v3)
		}
	})
}

func seedCodec(f *testing.F) *Codec { return newTestCodec(f) }

func FuzzDecodeEvent(f *testing.F) {
	c := seedCodec(f)
	ev := sampleEvent()
	b1, _ := c.EncodeEvent(nil, &ev)
	bare := topology.Event{EventID: "e", OrderID: "o", Type: "t", OccurredAt: t0}
	b2, _ := c.EncodeEvent(nil, &bare)
	fuzzDecoder(f, [][]byte{b1, b2},
		func(c *Codec, b []byte, v *topology.Event) error { return c.DecodeEvent(b, v) },
		func(c *Codec, dst []byte, v *topology.Event) ([]byte, error) { return c.EncodeEvent(dst, v) })
}

func FuzzDecodeState(f *testing.F) {
	c := seedCodec(f)
	st := sampleState()
	b1, _ := c.EncodeState(nil, &st)
	bare := topology.State{State: "placed", Version: 1}
	b2, _ := c.EncodeState(nil, &bare)
	fuzzDecoder(f, [][]byte{b1, b2},
		func(c *Codec, b []byte, v *topology.State) error { return c.DecodeState(b, v) },
		func(c *Codec, dst []byte, v *topology.State) ([]byte, error) { return c.EncodeState(dst, v) })
}

func FuzzDecodeStatusChange(f *testing.F) {
	c := seedCodec(f)
	s := sampleStatus()
	b1, _ := c.EncodeStatusChange(nil, &s)
	fuzzDecoder(f, [][]byte{b1},
		func(c *Codec, b []byte, v *StatusChange) error { return c.DecodeStatusChange(b, v) },
		func(c *Codec, dst []byte, v *StatusChange) ([]byte, error) { return c.EncodeStatusChange(dst, v) })
}

func FuzzDecodeRejection(f *testing.F) {
	c := seedCodec(f)
	r := sampleRejection()
	b1, _ := c.EncodeRejection(nil, &r)
	fuzzDecoder(f, [][]byte{b1},
		func(c *Codec, b []byte, v *Rejection) error { return c.DecodeRejection(b, v) },
		func(c *Codec, dst []byte, v *Rejection) ([]byte, error) { return c.EncodeRejection(dst, v) })
}

// FuzzEventFromJSON: no panic; errors match ErrInvalidJSON; what parses
// renders and parses back to the same event.
func FuzzEventFromJSON(f *testing.F) {
	f.Add([]byte(`{"event_id":"e1","order_id":"o1","type":"place_order","occurred_at":"2026-01-01T00:00:00Z","sequence":1,"attributes":{"k":"v"}}`))
	f.Add([]byte(`{"event_id":"e1","order_id":"o1","type":"t","occurred_at":"2026-01-01T00:00:00.123456789-07:00"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := EventFromJSON(line)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("error does not match ErrInvalidJSON: %v", err)
			}
			return
		}
		b, err := EventToJSON(&ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := EventFromJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Fatalf("round trip changed the event:\n%#v\n%#v", ev, back)
		}
	})
}

// FuzzParseLine: no panic; errors match ErrInvalidJSON.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`{"kind":"transition","order_id":"o1","event_id":"e1","event_type":"place_order","from":null,"to":"placed","version":1,"occurred_at":"2026-01-01T00:00:00Z"}`,
		`{"kind":"rejection","order_id":"o1","event_id":"e2","event_type":"ship_order","state":"placed","reason":"invalid_transition","detail":"x","occurred_at":"2026-01-01T00:00:00Z"}`,
		`{"kind":"dlq","key":"o1","error":"x","source_topic":"t","source_partition":1,"source_offset":2,"value_base64":"wwE="}`,
		`{"kind":"state","order_id":"o1","state":"placed","version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","marks":{"a":"2026-01-01T00:00:00Z"}}`,
		`{"kind":"tombstone","order_id":"o1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if _, err := ParseLine(line); err != nil && !errors.Is(err, ErrInvalidJSON) {
			t.Fatalf("error does not match ErrInvalidJSON: %v", err)
		}
	})
}
