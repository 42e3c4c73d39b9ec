// Package avro holds orderflow's wire formats: the Avro schemas of its four
// records (OrderEvent, StatusChange, Rejection, OrderState; namespace
// orderflow.v1, embedded .avsc files under schemas/), the codecs that write
// and read them, and the JSON-lines formats of the CLI (json.go).
//
// A Codec frames records either with Avro single-object encoding (NewCodec,
// the default: C3 01, the writer schema's CRC-64-AVRO fingerprint, the body)
// or with the Confluent wire format (NewConfluentCodec: 0, a schema registry
// ID, the body). Decoding always reads with the writer's schema and
// resolves it to the reader's, so records written by other known schema
// versions decode; a writer version that cannot be resolved is refused
// (ErrIncompatible at construction, ErrIncompatibleWriter when it comes
// from a registry). WithWriterSchemas adds writer versions beyond the
// embedded ones (CheckWriterSchema and ReadWriterSchemas check them first,
// naming what does not resolve); Fingerprint prints a fingerprint in wire
// byte order, as other Avro libraries do.
//
// Every byte that comes in may be garbage. Before anything is decoded, the
// body is walked against its writer schema: each length and count prefix is
// checked against the bytes that remain (so nothing is allocated for a
// lying prefix), varints, union and enum indexes and UTF-8 are checked, and
// the payload must be consumed exactly. (An OrderEvent of the current
// version is checked to the same rules as it is decoded, in one pass; the
// walk runs only if that pass refuses the body, and its verdict stands.) Required fields (IDs, types, states)
// must be non-empty. Every failure is a *DecodeError matching ErrMalformed,
// which the processor sends to the dead-letter topic; decoders never panic.
// A schema registry that cannot be reached gives ErrRegistry instead: that
// is not the record's fault.
//
// A decoded OrderEvent must also be within limits (limits.go): event_id and
// order_id at most MaxIDBytes (256), the type at most MaxEventTypeBytes
// (256), at most MaxAttributes (64) attributes with keys of at most
// MaxAttributeKeyBytes (256) and keys and values of at most
// MaxAttributesBytes (64 KiB) together, and occurred_at from
// 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z (MinOccurredAtMillis,
// MaxOccurredAtMillis: the instants RFC 3339 writes with a four-digit
// year). An event over a limit is ErrFieldLimit, one out of the range
// ErrTimeRange; both are malformed, with a detail that names the field and
// the limit. Every decoding path and EventFromJSON (so `orderflow replay`
// and `produce`) check the same limits in the same order, after the
// required fields, so the processor and replay agree on every event. The
// limits bound what one event adds to an order's state; MaxEncodedSizes
// gives, for a machine, the largest state, status change and rejection the
// processor can then write.
//
// The Go types of OrderEvent and OrderState (types.go) mirror
// topology.Event and topology.State field for field, so the codecs take the
// topology types directly (a pointer conversion, no copy). The processor's two per-event decoders (OrderEvent,
// OrderState) and its per-event encoders (OrderState, StatusChange,
// Rejection) have hand-written fast paths for the current schema version;
// hamba/avro decodes every other version, and the tests hold the two to
// the same results.
//
// Choices the formats leave open:
//   - processed_at is a plain timestamp-millis in Avro, as the schemas
//     declare it; a zero ProcessedAt round-trips as the zero time and is
//     omitted from JSON lines.
//   - Decoded empty maps and lists are nil, as in a fresh topology value.
//   - Arrays and maps are written without block byte sizes (positive block
//     counts only, which every Avro reader supports); both forms are read.
//   - Single-object headers carry the spec's fingerprint (of the Parsing
//     Canonical Form, without logicalType, as Java computes it); hamba's
//     own variant (with logicalType) is also recognised when reading.
//   - A Confluent codec also reads single-object payloads, and writes
//     single-object payloads for record types it was given no topic for.
package avro
