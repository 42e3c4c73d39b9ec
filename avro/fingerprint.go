package avro

import (
	"encoding/binary"
	"encoding/hex"
)

// Fingerprint is a schema's CRC-64-AVRO fingerprint as the eight bytes a
// single-object header carries after C3 01.
type Fingerprint [8]byte

// String returns the fingerprint in hex, in the order of its bytes on the
// wire: what a hex dump of a single-object payload shows after C3 01, and
// what other Avro libraries print for the bytes of a CRC-64-AVRO fingerprint
// (Java's SchemaNormalization.parsingFingerprint("CRC-64-AVRO", s), Rust's
// apache-avro). Reading the eight bytes as one little-endian number and
// printing that would reverse them: Uint64 is that number, for comparing
// with Java's parsingFingerprint64.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Uint64 returns the fingerprint as the number the CRC computes (Java's
// SchemaNormalization.parsingFingerprint64, as an unsigned value); the wire
// carries it little-endian.
func (f Fingerprint) Uint64() uint64 { return binary.LittleEndian.Uint64(f[:]) }

// fingerprintOf is the Fingerprint of a CRC-64-AVRO value.
func fingerprintOf(fp uint64) Fingerprint {
	var f Fingerprint
	binary.LittleEndian.PutUint64(f[:], fp)
	return f
}

// SchemaFingerprint returns the fingerprint of an Avro schema text as the
// specification defines it: CRC-64-AVRO of its Parsing Canonical Form, which
// leaves out logicalType (as Java computes it). It is what this package puts
// in the single-object header of the records it writes, and what it looks
// writer schemas up by when it reads them.
func SchemaFingerprint(text string) (Fingerprint, error) {
	pcf, err := canonicalForm(text)
	if err != nil {
		return Fingerprint{}, err
	}
	return fingerprintOf(crc64AvroLE(pcf)), nil
}
