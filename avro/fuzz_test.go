package avro

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orderflow/orderflow/topology"
)

// Each decoder fuzz target checks: no panic (decodeRecord recovers one, so
// a recovered panic fails the target too); every error is a malformed-input
// error; what decodes re-encodes and decodes to the same value; and the
// hand-written fast decoders agree with hamba's path (the scanner, then
// hamba): the same value, or the same error.

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

// fuzzDecoder runs the common checks for one record type; more, if not
// nil, runs checks of its own on every input b, with what the fast codec
// decoded from it (v is nil if it did not decode).
func fuzzDecoder[T any](f *testing.F, seeds [][]byte,
	decode func(*Codec, []byte, *T) error, encode func(*Codec, []byte, *T) ([]byte, error),
	more func(t *testing.T, fast, slow *Codec, b []byte, v *T)) {
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
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("fast and hamba decoders disagree: %v vs %v", err1, err2)
		}
		if more != nil {
			if err1 != nil {
				more(t, fast, slow, b, nil)
			} else {
				more(t, fast, slow, b, &v1)
			}
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
	scan, err := compile(c.event.reader)
	if err != nil {
		f.Fatal(err)
	}
	fuzzDecoder(f, [][]byte{b1, b2},
		func(c *Codec, b []byte, v *topology.Event) error { return c.DecodeEvent(b, v) },
		func(c *Codec, dst []byte, v *topology.Event) ([]byte, error) { return c.EncodeEvent(dst, v) },
		func(t *testing.T, fast, _ *Codec, b []byte, v *topology.Event) {
			// The one-pass decoder against the scanner, on the body and on
			// the whole input taken as a body.
			if len(b) >= soeHeaderLen {
				checkStrictEvent(t, scan, b[soeHeaderLen:])
			}
			checkStrictEvent(t, scan, b)
			if v == nil {
				return
			}
			// What the encoder writes takes the one-pass path.
			again, err := fast.EncodeEvent(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			if !checkStrictEvent(t, scan, again[soeHeaderLen:]) {
				t.Fatalf("one-pass decoder refused what the encoder wrote: %x", again)
			}
		})
}

func FuzzDecodeState(f *testing.F) {
	c := seedCodec(f)
	st := sampleState()
	b1, _ := c.EncodeState(nil, &st)
	bare := topology.State{State: "placed", Version: 1}
	b2, _ := c.EncodeState(nil, &bare)
	fuzzDecoder(f, [][]byte{b1, b2},
		func(c *Codec, b []byte, v *topology.State) error { return c.DecodeState(b, v) },
		func(c *Codec, dst []byte, v *topology.State) ([]byte, error) { return c.EncodeState(dst, v) }, nil)
}

func FuzzDecodeStatusChange(f *testing.F) {
	c := seedCodec(f)
	s := sampleStatus()
	b1, _ := c.EncodeStatusChange(nil, &s)
	fuzzDecoder(f, [][]byte{b1},
		func(c *Codec, b []byte, v *StatusChange) error { return c.DecodeStatusChange(b, v) },
		func(c *Codec, dst []byte, v *StatusChange) ([]byte, error) { return c.EncodeStatusChange(dst, v) },
		func(t *testing.T, fast, slow *Codec, b []byte, v *StatusChange) {
			if v != nil {
				checkSameEncoding(t, "status", fast, slow, v, (*Codec).EncodeStatusChange, statusSize)
			}
		})
}

func FuzzDecodeRejection(f *testing.F) {
	c := seedCodec(f)
	r := sampleRejection()
	b1, _ := c.EncodeRejection(nil, &r)
	fuzzDecoder(f, [][]byte{b1},
		func(c *Codec, b []byte, v *Rejection) error { return c.DecodeRejection(b, v) },
		func(c *Codec, dst []byte, v *Rejection) ([]byte, error) { return c.EncodeRejection(dst, v) },
		func(t *testing.T, fast, slow *Codec, b []byte, v *Rejection) {
			if v != nil {
				checkSameEncoding(t, "rejection", fast, slow, v, (*Codec).EncodeRejection, rejectionSize)
			}
		})
}

// Each encoder fuzz target builds a record from the fuzzer's strings (any
// bytes), numbers and times, and checks that the hand-written encoder
// writes what hamba writes, or refuses it with the same error.

func FuzzEncodeStatusChange(f *testing.F) {
	s := sampleStatus()
	f.Add(s.OrderID, s.EventID, s.EventType, true, *s.FromState, s.ToState, s.Version,
		s.OccurredAt.Unix(), int64(s.OccurredAt.Nanosecond()), s.ProcessedAt.Unix(), int64(s.ProcessedAt.Nanosecond()))
	f.Add("ø", "日本", "🙂", false, "", "\xff", int64(math.MinInt64), int64(-62135596800), int64(0), int64(1)<<62, int64(-1))
	fast, slow := fuzzCodecs(f)
	f.Fuzz(func(t *testing.T, orderID, eventID, eventType string, hasFrom bool, from, to string,
		version, occSec, occNsec, procSec, procNsec int64) {
		v := StatusChange{OrderID: orderID, EventID: eventID, EventType: eventType, ToState: to, Version: version,
			OccurredAt: time.Unix(occSec, occNsec), ProcessedAt: time.Unix(procSec, procNsec)}
		if hasFrom {
			v.FromState = &from
		}
		checkSameEncoding(t, "status", fast, slow, &v, (*Codec).EncodeStatusChange, statusSize)
	})
}

func FuzzEncodeRejection(f *testing.F) {
	r := sampleRejection()
	f.Add(r.OrderID, r.EventID, r.EventType, true, *r.State, r.Reason, r.Detail,
		r.OccurredAt.Unix(), int64(r.OccurredAt.Nanosecond()), r.ProcessedAt.Unix(), int64(r.ProcessedAt.Nanosecond()))
	f.Add("ø", "日本", "🙂", false, "", "\xff", "", int64(-62135596800), int64(0), int64(1)<<62, int64(-1))
	fast, slow := fuzzCodecs(f)
	f.Fuzz(func(t *testing.T, orderID, eventID, eventType string, hasState bool, state, reason, detail string,
		occSec, occNsec, procSec, procNsec int64) {
		v := Rejection{OrderID: orderID, EventID: eventID, EventType: eventType, Reason: reason, Detail: detail,
			OccurredAt: time.Unix(occSec, occNsec), ProcessedAt: time.Unix(procSec, procNsec)}
		if hasState {
			v.State = &state
		}
		checkSameEncoding(t, "rejection", fast, slow, &v, (*Codec).EncodeRejection, rejectionSize)
	})
}

// FuzzValidUTF8: validUTF8 is utf8.Valid.
func FuzzValidUTF8(f *testing.F) {
	for _, s := range fastStrings {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validUTF8(b), utf8.Valid(b); got != want {
			t.Fatalf("validUTF8(%q) = %v, want %v", b, got, want)
		}
	})
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
		if _, err := parseLine(line); err != nil && !errors.Is(err, ErrInvalidJSON) {
			t.Fatalf("error does not match ErrInvalidJSON: %v", err)
		}
	})
}
