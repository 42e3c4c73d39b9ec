package avro

import (
	"errors"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/topology"
)

// Fingerprints of schemas from the Avro project's own test data
// (share/test/data/schema-tests.txt, as Java's parsingFingerprint64 longs;
// Rust's serde_avro_fast tests against the same values) and the digest of
// "hello world" that avro-rs documents for its Rabin hasher, as the bytes it
// returns: the wire's order.
func TestSchemaFingerprintKnownValues(t *testing.T) {
	for _, tc := range []struct {
		schema string
		java   int64  // SchemaNormalization.parsingFingerprint64
		wire   string // the same, as the single-object header's bytes
	}{
		{`"null"`, 7195948357588979594, "8a8f25cce724dd63"},
		{`"boolean"`, -6970731678124411036, "64f7d4a478fc429f"},
		{`{"name":"foo","type":"fixed","size":15}`, 1756455273707447556, "04a531edc32e6018"},
		// Not canonical as written: the canonical form drops doc and
		// whitespace.
		{`{"type": "fixed", "size": 15, "name": "foo", "doc": "x"}`, 1756455273707447556, "04a531edc32e6018"},
	} {
		fp, err := SchemaFingerprint(tc.schema)
		if err != nil {
			t.Fatalf("%s: %v", tc.schema, err)
		}
		if got := fp.String(); got != tc.wire {
			t.Errorf("%s: String() %s, want %s (wire byte order)", tc.schema, got, tc.wire)
		}
		if got := int64(fp.Uint64()); got != tc.java {
			t.Errorf("%s: Uint64() %d, want %d", tc.schema, got, tc.java)
		}
	}
	if got := fingerprintOf(crc64AvroLE("hello world")).String(); got != "60335ba6d0415528" {
		t.Errorf(`CRC-64-AVRO("hello world") = %s, want 60335ba6d0415528`, got)
	}
}

// What SchemaFingerprint prints is what the header of a record written with
// the schema carries, byte for byte.
func TestSchemaFingerprintIsTheHeader(t *testing.T) {
	text, err := Schema(RecordOrderEvent)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := SchemaFingerprint(text)
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	b, err := newTestCodec(t).EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := Fingerprint(b[2:10]); got != fp {
		t.Fatalf("header carries %s, SchemaFingerprint says %s", got, fp)
	}
}

// The error of an unknown fingerprint shows it in the wire's byte order, so
// that it can be compared with a hex dump of the record and with
// `orderflow schema fingerprint`.
func TestUnknownFingerprintWireOrder(t *testing.T) {
	ev := sampleEvent()
	b, err := newTestCodec(t).EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[2:10], []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08})
	var got topology.Event
	err = newTestCodec(t).DecodeEvent(b, &got)
	if !errors.Is(err, ErrUnknownFingerprint) {
		t.Fatalf("err %v, want ErrUnknownFingerprint", err)
	}
	if !strings.Contains(err.Error(), "0102030405060708") {
		t.Fatalf("error does not show the fingerprint in wire order 0102030405060708: %v", err)
	}
}
