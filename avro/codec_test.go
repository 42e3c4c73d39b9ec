package avro

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/orderflow/orderflow/topology"
)

// The Avro types mirror the topology types: these conversions must compile.
var (
	_ = topology.Event(orderEvent{})
	_ = orderEvent(topology.Event{})
	_ = topology.State(orderState{})
	_ = orderState(topology.State{})
	_ = (*topology.Event)(&orderEvent{})
	_ = (*orderState)(&topology.State{})
)

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

func sampleEvent() topology.Event {
	return topology.Event{
		EventID:    "e-0001",
		OrderID:    "o-42",
		Type:       "ship_order",
		OccurredAt: t0,
		Sequence:   ptr(int64(7)),
		Attributes: map[string]string{"tracking_number": "1Z999AA10123456784", "carrier": "ups"},
	}
}

func sampleState() topology.State {
	ids := make([]string, topology.RecentEventIDs)
	for i := range ids {
		ids[i] = "e-" + string(rune('a'+i%26)) + "-event"
	}
	return topology.State{
		State:          "shipped",
		Version:        5,
		CreatedAt:      t0.Add(-time.Hour),
		UpdatedAt:      t0,
		LastSequence:   ptr(int64(7)),
		RecentEventIDs: ids,
		Marks:          map[string]int64{"pay_order": t0.Add(-time.Minute).UnixMilli()},
		History:        map[string]string{"fulfilment": "packing"},
		Timers:         []topology.Clock{{State: "in_transit", Entered: t0.Add(-time.Minute).UnixMilli()}},
		ClosedAt:       ptr(t0.Add(time.Second)),
	}
}

func sampleStatus() StatusChange {
	return StatusChange{
		OrderID: "o-42", EventID: "e-0001", EventType: "ship_order",
		FromState: ptr("packed"), ToState: "shipped", Version: 5,
		OccurredAt: t0, ProcessedAt: t0.Add(3 * time.Millisecond),
	}
}

func sampleRejection() Rejection {
	return Rejection{
		OrderID: "o-42", EventID: "e-0002", EventType: "cancel_order",
		State: ptr("shipped"), Reason: "cancel_after_shipment", Detail: "the order has shipped",
		OccurredAt: t0, ProcessedAt: t0.Add(time.Millisecond),
	}
}

func newTestCodec(t testing.TB, opts ...Option) *Codec {
	t.Helper()
	c, err := NewCodec(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip encodes and decodes every record type with c, checks that each
// decodes to what was encoded and that the framing is the expected one, and
// returns the four payloads.
func roundTrip(t *testing.T, c *Codec, wantMagic byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	check := func(name string, b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		if b[0] != wantMagic {
			t.Fatalf("%s: first byte %#x, want %#x", name, b[0], wantMagic)
		}
		out[name] = b
	}

	prefix := []byte("keep")
	ev := sampleEvent()
	b, err := c.EncodeEvent(bytes.Clone(prefix), &ev)
	if err == nil && !bytes.HasPrefix(b, prefix) {
		t.Fatalf("EncodeEvent did not append to dst")
	}
	if err == nil {
		b = b[len(prefix):]
	}
	check("event", b, err)
	var gotEv topology.Event
	if err := c.DecodeEvent(b, &gotEv); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	if !reflect.DeepEqual(gotEv, ev) {
		t.Fatalf("event round trip:\n got %#v\nwant %#v", gotEv, ev)
	}

	st := sampleState()
	b, err = c.EncodeState(nil, &st)
	check("state", b, err)
	var gotSt topology.State
	if err := c.DecodeState(b, &gotSt); err != nil {
		t.Fatalf("decode state: %v", err)
	}
	if !reflect.DeepEqual(gotSt, st) {
		t.Fatalf("state round trip:\n got %#v\nwant %#v", gotSt, st)
	}

	sc := sampleStatus()
	b, err = c.EncodeStatusChange(nil, &sc)
	check("status", b, err)
	var gotSc StatusChange
	if err := c.DecodeStatusChange(b, &gotSc); err != nil {
		t.Fatalf("decode status change: %v", err)
	}
	if !reflect.DeepEqual(gotSc, sc) {
		t.Fatalf("status change round trip:\n got %#v\nwant %#v", gotSc, sc)
	}

	rj := sampleRejection()
	b, err = c.EncodeRejection(nil, &rj)
	check("rejection", b, err)
	var gotRj Rejection
	if err := c.DecodeRejection(b, &gotRj); err != nil {
		t.Fatalf("decode rejection: %v", err)
	}
	if !reflect.DeepEqual(gotRj, rj) {
		t.Fatalf("rejection round trip:\n got %#v\nwant %#v", gotRj, rj)
	}
	return out
}

func TestRoundTripSingleObject(t *testing.T) {
	c := newTestCodec(t)
	payloads := roundTrip(t, c, soeMagic0)
	for name, b := range payloads {
		if b[1] != soeMagic1 {
			t.Errorf("%s: second byte %#x, want 0x01", name, b[1])
		}
	}
}

// Optional and empty values round-trip as nil / zero.
func TestRoundTripEmptyValues(t *testing.T) {
	c := newTestCodec(t)
	ev := topology.Event{EventID: "e", OrderID: "o", Type: "place_order", OccurredAt: t0}
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	// Decode into a value holding stale data: nothing of it may survive.
	got := sampleEvent()
	if err := c.DecodeEvent(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("got %#v, want %#v", got, ev)
	}

	st := topology.State{State: "placed", Version: 1, CreatedAt: t0, UpdatedAt: t0}
	if b, err = c.EncodeState(nil, &st); err != nil {
		t.Fatal(err)
	}
	gotSt := sampleState()
	if err := c.DecodeState(b, &gotSt); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotSt, st) {
		t.Fatalf("got %#v, want %#v", gotSt, st)
	}

	sc := StatusChange{OrderID: "o", EventID: "e", EventType: "place_order", ToState: "placed", Version: 1, OccurredAt: t0}
	if b, err = c.EncodeStatusChange(nil, &sc); err != nil {
		t.Fatal(err)
	}
	var gotSc StatusChange
	if err := c.DecodeStatusChange(b, &gotSc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotSc, sc) || gotSc.FromState != nil || !gotSc.ProcessedAt.IsZero() {
		t.Fatalf("got %#v, want %#v", gotSc, sc)
	}
}

// Times travel as milliseconds: finer precision is truncated, zones become UTC.
func TestTimestampMillis(t *testing.T) {
	c := newTestCodec(t)
	ev := sampleEvent()
	ev.OccurredAt = time.Date(2026, 5, 6, 7, 8, 9, 123_456_789, time.FixedZone("x", 3600))
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	var got topology.Event
	if err := c.DecodeEvent(b, &got); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 5, 6, 6, 8, 9, 123_000_000, time.UTC)
	if got.OccurredAt != want {
		t.Fatalf("occurred_at %v, want %v", got.OccurredAt, want)
	}
}

func TestEncodeRefusesMissingFields(t *testing.T) {
	c := newTestCodec(t)
	ev := sampleEvent()
	ev.OrderID = ""
	dst := []byte("x")
	out, err := c.EncodeEvent(dst, &ev)
	if !errorsIs(err, ErrMissingField) {
		t.Fatalf("err %v, want ErrMissingField", err)
	}
	if string(out) != "x" {
		t.Fatalf("dst changed on error: %q", out)
	}
	st := sampleState()
	st.State = ""
	if _, err := c.EncodeState(nil, &st); !errorsIs(err, ErrMissingField) {
		t.Fatalf("state: err %v, want ErrMissingField", err)
	}
	sc := sampleStatus()
	sc.ToState = ""
	if _, err := c.EncodeStatusChange(nil, &sc); !errorsIs(err, ErrMissingField) {
		t.Fatalf("status: err %v, want ErrMissingField", err)
	}
	rj := sampleRejection()
	rj.Reason = ""
	if _, err := c.EncodeRejection(nil, &rj); !errorsIs(err, ErrMissingField) {
		t.Fatalf("rejection: err %v, want ErrMissingField", err)
	}
}

func TestEncodeRefusesOversizeRecord(t *testing.T) {
	c := newTestCodec(t, WithMaxRecordSize(64))
	ev := sampleEvent()
	ev.Attributes["big"] = string(bytes.Repeat([]byte("x"), 100))
	if _, err := c.EncodeEvent(nil, &ev); !errorsIs(err, ErrOversize) {
		t.Fatalf("err %v, want ErrOversize", err)
	}
}

// crc64Avro is the CRC-64-AVRO fingerprint exactly as the Avro
// specification writes it out, independent of hamba's implementation.
func crc64Avro(b []byte) uint64 {
	const empty = 0xc15d213aa4d7a795
	var table [256]uint64
	for i := range table {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (empty & -(fp & 1))
		}
		table[i] = fp
	}
	fp := uint64(empty)
	for _, c := range b {
		fp = (fp >> 8) ^ table[byte(fp)^c]
	}
	return fp
}

// The single-object header carries the spec's fingerprint of the Parsing
// Canonical Form, which has no logicalType: what a Java producer computes.
func TestSingleObjectFingerprintIsTheSpecs(t *testing.T) {
	const pcf = `{"name":"orderflow.v1.OrderEvent","type":"record","fields":[` +
		`{"name":"event_id","type":"string"},{"name":"order_id","type":"string"},` +
		`{"name":"type","type":"string"},{"name":"occurred_at","type":"long"},` +
		`{"name":"sequence","type":["null","long"]},` +
		`{"name":"attributes","type":{"type":"map","values":"string"}}]}`
	text, err := Schema(RecordOrderEvent)
	if err != nil {
		t.Fatal(err)
	}
	got, err := canonicalForm(text)
	if err != nil {
		t.Fatal(err)
	}
	if got != pcf {
		t.Fatalf("canonical form\n got %s\nwant %s", got, pcf)
	}
	c := newTestCodec(t)
	ev := sampleEvent()
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if fp, want := binary.LittleEndian.Uint64(b[2:10]), crc64Avro([]byte(pcf)); fp != want {
		t.Fatalf("fingerprint %016x, want %016x", fp, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := newTestCodec(t)
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			defer func() { done <- err }()
			for i := range 200 {
				ev := sampleEvent()
				ev.EventID = string(rune('a'+g)) + "-" + time.Duration(i).String()
				var b []byte
				if b, err = c.EncodeEvent(nil, &ev); err != nil {
					return
				}
				var got topology.Event
				if err = c.DecodeEvent(b, &got); err != nil {
					return
				}
				if !reflect.DeepEqual(got, ev) {
					err = errorf("goroutine %d: got %#v, want %#v", g, got, ev)
					return
				}
			}
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// hamba's own single-object writer (package soe) fingerprints its canonical
// string, which keeps logicalType; such payloads are read too.
func TestSingleObjectHambaFingerprint(t *testing.T) {
	c := newTestCodec(t)
	ev := sampleEvent()
	b, err := c.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	own, err := c.event.reader.FingerprintUsing("CRC64-AVRO-LE")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(own, b[2:10]) {
		t.Fatal("hamba's fingerprint equals the spec's; this test tests nothing")
	}
	alt := append(append([]byte{0xC3, 0x01}, own...), b[10:]...)
	var got topology.Event
	if err := c.DecodeEvent(alt, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("got %#v, want %#v", got, ev)
	}
}
