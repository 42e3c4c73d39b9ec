package avro

import (
	"embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	hamba "github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/pkg/crc64"
)

// namespace is the Avro namespace of orderflow's records.
const namespace = "orderflow.v1"

// Record names (without the namespace): the arguments of Schema and the
// values of DecodeError.Record.
const (
	RecordOrderEvent   = "OrderEvent"
	RecordStatusChange = "StatusChange"
	RecordRejection    = "Rejection"
	RecordOrderState   = "OrderState"
)

// schemaFiles holds every known writer version of every record, named
// <record>.v<N>.avsc. The highest version of a record is its reader schema
// and the schema this package writes.
//
//go:embed schemas/*.avsc
var schemaFiles embed.FS

// Schema returns the current (reader and writer) schema text of record
// ("OrderEvent", ...) as embedded, for tools and registries.
func Schema(record string) (string, error) {
	files, err := embeddedVersions()
	if err != nil {
		return "", err
	}
	v := files[record]
	if len(v) == 0 {
		return "", fmt.Errorf("avro: no schema for record %q", record)
	}
	return v[len(v)-1], nil
}

// embeddedVersions returns the embedded schema texts per record name,
// oldest version first.
func embeddedVersions() (map[string][]string, error) {
	entries, err := schemaFiles.ReadDir("schemas")
	if err != nil {
		return nil, err
	}
	type file struct {
		version int
		text    string
	}
	byRecord := map[string][]file{}
	for _, e := range entries {
		name := e.Name()
		var base string
		var version int
		stem := strings.TrimSuffix(name, ".avsc")
		i := strings.LastIndex(stem, ".v")
		if i < 0 {
			return nil, fmt.Errorf("avro: schema file %s is not named <record>.v<N>.avsc", name)
		}
		if _, err := fmt.Sscanf(stem[i+2:], "%d", &version); err != nil {
			return nil, fmt.Errorf("avro: schema file %s is not named <record>.v<N>.avsc", name)
		}
		base = stem[:i]
		b, err := schemaFiles.ReadFile(path.Join("schemas", name))
		if err != nil {
			return nil, err
		}
		rec := recordOfFile(base)
		if rec == "" {
			return nil, fmt.Errorf("avro: schema file %s names no known record", name)
		}
		byRecord[rec] = append(byRecord[rec], file{version, string(b)})
	}
	out := make(map[string][]string, len(byRecord))
	for rec, fs := range byRecord {
		sort.Slice(fs, func(i, j int) bool { return fs[i].version < fs[j].version })
		for _, f := range fs {
			out[rec] = append(out[rec], f.text)
		}
	}
	return out, nil
}

func recordOfFile(base string) string {
	switch base {
	case "order_event":
		return RecordOrderEvent
	case "status_change":
		return RecordStatusChange
	case "rejection":
		return RecordRejection
	case "order_state":
		return RecordOrderState
	}
	return ""
}

// parseSchema parses an Avro schema text in a cache of its own: hamba's
// default cache is keyed by full name, and two versions of one record share
// a name.
func parseSchema(text string) (s hamba.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("avro: parse schema: panic: %v", r)
		}
	}()
	return hamba.ParseWithCache(text, "", &hamba.SchemaCache{})
}

// fingerprints returns the CRC-64-AVRO fingerprints under which a
// single-object payload written with schema text may name it: first the one
// the Avro specification defines (over the Parsing Canonical Form, which
// has no logicalType attributes, as Java's SchemaNormalization computes
// it), which this package writes; then hamba's own (its canonical string
// keeps logical types), which other hamba-based producers write.
func fingerprints(text string, parsed hamba.Schema) ([]uint64, error) {
	f, err := SchemaFingerprint(text)
	if err != nil {
		return nil, err
	}
	spec := f.Uint64()
	own, err := parsed.FingerprintUsing(hamba.CRC64AvroLE)
	if err != nil {
		return nil, err
	}
	if fp := binary.LittleEndian.Uint64(own); fp != spec {
		return []uint64{spec, fp}, nil
	}
	return []uint64{spec}, nil
}

// crc64AvroLE is the CRC-64-AVRO fingerprint of s as the single-object
// header carries it (read as a little-endian uint64).
func crc64AvroLE(s string) uint64 {
	sum := crc64.SumWithByteOrder([]byte(s), crc64.LittleEndian)
	return binary.LittleEndian.Uint64(sum[:])
}

// canonicalForm returns the Parsing Canonical Form of a schema text (the
// string the spec's fingerprint is computed over).
func canonicalForm(text string) (string, error) {
	var doc any
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return "", err
	}
	stripped, err := json.Marshal(stripLogicalTypes(doc))
	if err != nil {
		return "", err
	}
	s, err := parseSchema(string(stripped))
	if err != nil {
		return "", err
	}
	return s.String(), nil
}

// stripLogicalTypes removes logicalType (and the decimal attributes that go
// with it) from a decoded schema document, leaving the underlying types.
func stripLogicalTypes(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["logicalType"]; ok {
			delete(v, "logicalType")
			delete(v, "precision")
			delete(v, "scale")
		}
		for k, e := range v {
			v[k] = stripLogicalTypes(e)
		}
	case []any:
		for i, e := range v {
			v[i] = stripLogicalTypes(e)
		}
	}
	return v
}

// explainIncompatible names the record field that makes writer unreadable
// by reader, falling back to hamba's error.
func explainIncompatible(reader, writer hamba.Schema, err error) string {
	rr, ok1 := reader.(*hamba.RecordSchema)
	wr, ok2 := writer.(*hamba.RecordSchema)
	if !ok1 || !ok2 {
		return err.Error()
	}
	if rr.FullName() != wr.FullName() {
		return fmt.Sprintf("reader record %s, writer record %s", rr.FullName(), wr.FullName())
	}
	for _, rf := range rr.Fields() {
		var wf *hamba.Field
		for _, f := range wr.Fields() {
			if f.Name() == rf.Name() {
				wf = f
				break
			}
		}
		if wf == nil {
			if !rf.HasDefault() {
				return fmt.Sprintf("field %q is not written and has no default", rf.Name())
			}
			continue
		}
		if ferr := hamba.NewSchemaCompatibility().Compatible(rf.Type(), wf.Type()); ferr != nil {
			return fmt.Sprintf("field %q: reader type %s, writer type %s: %v", rf.Name(), rf.Type(), wf.Type(), ferr)
		}
	}
	return err.Error()
}
