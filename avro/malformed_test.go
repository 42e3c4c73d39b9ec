package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/orderflow/orderflow/topology"
)

// appendVarint appends v zig-zag encoded, as Avro writes int and long.
func appendVarint(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64(v<<1)^uint64(v>>63))
}

func appendString(b []byte, s string) []byte {
	return append(appendVarint(b, int64(len(s))), s...)
}

// eventBody hand-assembles an OrderEvent v1 body; tail is appended after
// the fixed fields (sequence union and attributes map).
func eventBody(eventID string, tail ...byte) []byte {
	b := appendString(nil, eventID)
	b = appendString(b, "o1")
	b = appendString(b, "place_order")
	b = appendVarint(b, t0.UnixMilli())
	return append(b, tail...)
}

func TestDecodeMalformed(t *testing.T) {
	c := newTestCodec(t)
	ev := sampleEvent()
	valid, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	hdr := valid[:soeHeaderLen]
	frame := func(body []byte) []byte { return append(append([]byte{}, hdr...), body...) }
	status := sampleStatus()
	statusBytes, _ := c.EncodeStatusChange(nil, &status)

	huge := appendVarint(nil, 1<<62)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"one byte marker", []byte{0xC3}, ErrTruncated},
		{"one byte other", []byte{0x42}, ErrUnknownFraming},
		{"header cut", valid[:9], ErrTruncated},
		{"wrong second magic byte", append([]byte{0xC3, 0x02}, valid[2:]...), ErrUnknownFraming},
		{"JSON instead of Avro", []byte(`{"event_id":"e1"}`), ErrUnknownFraming},
		{"Confluent framing without registry", append([]byte{0, 0, 0, 0, 1}, valid[10:]...), ErrUnknownFraming},
		{"unknown fingerprint", append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, valid[10:]...), ErrUnknownFingerprint},
		{"another record's fingerprint", statusBytes, ErrUnknownFingerprint},
		{"trailing garbage", append(append([]byte{}, valid...), 0x00), ErrTrailingBytes},
		{"trailing record", append(append([]byte{}, valid...), valid...), ErrTrailingBytes},
		{"huge string length", frame(append(huge, "e1"...)), ErrOversize},
		{"huge map block count", frame(eventBody("e1", append([]byte{0}, huge...)...)), ErrOversize},
		{"huge map block byte size", frame(eventBody("e1", append([]byte{0}, append(appendVarint(nil, -1), huge...)...)...)), ErrOversize},
		{"string length beyond payload", frame(appendVarint(nil, 100)), ErrTruncated},
		{"negative string length", frame(appendVarint(nil, -5)), ErrInvalidValue},
		{"union index out of range", frame(eventBody("e1", 4, 0)), ErrInvalidValue},
		{"negative union index", frame(eventBody("e1", 1, 0)), ErrInvalidValue},
		{"varint longer than 10 bytes", frame(eventBody("e1", 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)), ErrInvalidValue},
		{"string not UTF-8", frame(eventBody("e\xff", 0, 0)), ErrInvalidValue},
		{"block size lies", frame(eventBody("e1", append([]byte{0}, append(appendVarint(nil, -1), 0x02, 0x02, 'k', 0x02, 'v', 0)...)...)), ErrInvalidValue},
		{"empty event_id", frame(eventBody("", 0, 0)), ErrMissingField},
		{"payload over max record size", make([]byte, DefaultMaxRecordSize+1), ErrOversize},
	}
	for _, fast := range []bool{true, false} {
		c.noFast = !fast
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/fast=%v", tc.name, fast), func(t *testing.T) {
				var got topology.Event
				checkDecodeErr(t, c.DecodeEvent(tc.in, &got), tc.want)
			})
		}
		// Truncated at every byte of a valid record.
		for i := range len(valid) {
			var got topology.Event
			err := c.DecodeEvent(valid[:i], &got)
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("fast=%v: cut at %d of %d: err %v, want ErrTruncated", fast, i, len(valid), err)
			}
		}
	}
	c.noFast = false
	// The other decoders, cut at every byte.
	st := sampleState()
	rj := sampleRejection()
	stateBytes, _ := c.EncodeState(nil, &st)
	rejBytes, _ := c.EncodeRejection(nil, &rj)
	for name, tc := range map[string]struct {
		b      []byte
		decode func([]byte) error
	}{
		"state":     {stateBytes, func(b []byte) error { var v topology.State; return c.DecodeState(b, &v) }},
		"status":    {statusBytes, func(b []byte) error { var v StatusChange; return c.DecodeStatusChange(b, &v) }},
		"rejection": {rejBytes, func(b []byte) error { var v Rejection; return c.DecodeRejection(b, &v) }},
	} {
		if err := tc.decode(tc.b); err != nil {
			t.Fatalf("%s: valid record: %v", name, err)
		}
		for i := range len(tc.b) {
			if err := tc.decode(tc.b[:i]); !errors.Is(err, ErrTruncated) {
				t.Errorf("%s: cut at %d of %d: err %v, want ErrTruncated", name, i, len(tc.b), err)
			}
		}
		if err := tc.decode(append(append([]byte{}, tc.b...), 1, 2)); !errors.Is(err, ErrTrailingBytes) {
			t.Errorf("%s: trailing bytes: err %v", name, err)
		}
	}
}

func checkDecodeErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err %v, want %v", err, want)
	}
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v does not match ErrMalformed", err)
	}
	var de *DecodeError
	if !errors.As(err, &de) || de.Record == "" {
		t.Fatalf("err %v is not a *DecodeError naming its record", err)
	}
}

// A length prefix asking for the most a record may hold allocates nothing
// when the bytes are not there.
func TestHugePrefixAllocatesLittle(t *testing.T) {
	c := newTestCodec(t)
	ev := sampleEvent()
	valid, _ := c.EncodeEvent(nil, &ev)
	for _, fast := range []bool{true, false} {
		c.noFast = !fast
		for _, n := range []int64{DefaultMaxRecordSize - 100, 1 << 40} {
			in := append(append([]byte{}, valid[:soeHeaderLen]...), appendVarint(nil, n)...)
			in = append(in, "e1"...)
			var got topology.Event
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const runs = 100
			for range runs {
				if err := c.DecodeEvent(in, &got); err == nil {
					t.Fatal("decoded a record with a lying length")
				}
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 4096 {
				t.Errorf("fast=%v, length %d: %d bytes allocated per decode", fast, n, per)
			}
		}
	}
}
