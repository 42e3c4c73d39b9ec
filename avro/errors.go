package avro

import (
	"errors"
	"fmt"
)

// ErrMalformed is matched (errors.Is) by every error that says a record's
// bytes cannot be decoded: the record is poison and belongs on the
// dead-letter topic. Errors that do not match it (a schema registry that
// cannot be reached, say) are about the environment, not the record, and
// retrying may help.
var ErrMalformed = errors.New("malformed record")

// The kinds of malformed input. Each matches ErrMalformed; a decoder returns
// them wrapped in a *DecodeError. Callers that need more than ErrMalformed,
// such as a tool that reports why records are poison, match them with
// errors.Is.
var (
	// ErrUnknownFraming: the payload starts with neither the single-object
	// marker C3 01 nor (for a registry codec) the Confluent magic byte 0.
	ErrUnknownFraming = malformedKind("unknown framing")
	// ErrUnknownFingerprint: a single-object payload names a writer schema
	// that is not among the known versions.
	ErrUnknownFingerprint = malformedKind("unknown schema fingerprint")
	// ErrUnknownSchemaID: a Confluent payload names a schema ID the registry
	// does not have.
	ErrUnknownSchemaID = malformedKind("unknown schema id")
	// ErrIncompatibleWriter: the payload's writer schema cannot be resolved to
	// the reader's (another record type, or an incompatible change).
	ErrIncompatibleWriter = malformedKind("incompatible writer schema")
	// ErrTruncated: the payload ends inside a header or a value: a length or
	// count prefix asks for more bytes than remain, but no more than a
	// record may hold.
	ErrTruncated = malformedKind("truncated")
	// ErrTrailingBytes: bytes remain after the record.
	ErrTrailingBytes = malformedKind("trailing bytes")
	// ErrOversize: the payload is longer than the max record size
	// (WithMaxRecordSize), or a length or count prefix asks for more than a
	// record of that size could hold. Nothing is allocated for it.
	ErrOversize = malformedKind("oversize length prefix")
	// ErrInvalidValue: a value that no writer produces: a negative length, an
	// over-long varint, an out-of-range union or enum index, a boolean other
	// than 0 or 1, a string that is not UTF-8, a lying block byte size.
	ErrInvalidValue = malformedKind("invalid value")
	// ErrMissingField: a field the record cannot be without (an ID, an event
	// type, a state) is empty. Encoders refuse such records too.
	ErrMissingField = malformedKind("missing required field")
)

// ErrIncompatible is matched by the error of a codec constructor given a
// writer schema that cannot be resolved to the reader schema of its record.
var ErrIncompatible = errors.New("incompatible schema")

// ErrNotRegistered is matched by the error of NewConfluentCodec with
// WithRegistryLookupOnly when a record's schema is not registered under its
// subject: someone who may register schemas has to register it.
var ErrNotRegistered = errors.New("schema not registered")

// ErrRegistry is matched by errors talking to the schema registry other than
// "no such schema id" (which is ErrUnknownSchemaID). The record may be fine:
// do not dead-letter it; retry or stop.
var ErrRegistry = errors.New("schema registry")

// kindError is a kind of malformed input.
type kindError struct{ msg string }

func malformedKind(msg string) error { return &kindError{msg} }

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == ErrMalformed }

// DecodeError describes why a payload did not decode. It matches its Kind
// (ErrTruncated, ...) and ErrMalformed with errors.Is; a caller that wants
// the record, the offset or the detail gets it with errors.As.
type DecodeError struct {
	// Record is the Avro record name the decoder wanted ("OrderEvent").
	Record string
	// Offset is the byte offset in the payload where decoding failed, or -1.
	Offset int
	// Kind is one of the Err* kinds above, or ErrRegistry when a writer
	// schema could not be fetched (then the error does not match
	// ErrMalformed).
	Kind error
	// Detail says more, for humans; may be empty.
	Detail string
	// Err is an underlying cause, if any.
	Err error
}

func (e *DecodeError) Error() string {
	s := fmt.Sprintf("avro: decode %s: %v", e.Record, e.Kind)
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at byte %d", e.Offset)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the kind and the cause.
func (e *DecodeError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}
