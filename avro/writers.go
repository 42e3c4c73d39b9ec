package avro

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	hamba "github.com/hamba/avro/v2"
)

// WriterSchema is a writer schema read by ReadWriterSchemas.
type WriterSchema struct {
	Path        string      // the file it was read from
	Record      string      // the record it is a version of ("OrderEvent")
	Fingerprint Fingerprint // what single-object payloads written with it carry
	Text        string      // the schema, for WithWriterSchemas
}

// ReadWriterSchemas reads every .avsc file of dir (in name order; other
// files are left alone) and checks each with CheckWriterSchema. An error
// names the file and, for an incompatible schema, the field. A directory
// without .avsc files is not an error: it gives none.
func ReadWriterSchemas(dir string) ([]WriterSchema, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []WriterSchema
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".avsc") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		rec, fp, err := CheckWriterSchema(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, WriterSchema{Path: path, Record: rec, Fingerprint: fp, Text: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// CheckWriterSchema checks that text is a writer schema WithWriterSchemas
// takes: a version of one of this package's records (by full name) that
// the record's reader schema can read. Avro's resolution rules decide: a
// field the writer adds is skipped, one it lacks needs a default in the
// reader, a field both have needs types that resolve (int to long, ...).
// It returns the record's name and the schema's fingerprint. An
// unresolvable schema gives an error matching ErrIncompatible that names
// the field.
func CheckWriterSchema(text string) (record string, fp Fingerprint, err error) {
	rec, w, err := writerRecord(text)
	if err != nil {
		return "", Fingerprint{}, err
	}
	readerText, err := Schema(rec)
	if err != nil {
		return "", Fingerprint{}, err
	}
	reader, err := parseSchema(readerText)
	if err != nil {
		return "", Fingerprint{}, err
	}
	if _, err := hamba.NewSchemaCompatibility().Resolve(reader, w); err != nil {
		return "", Fingerprint{}, fmt.Errorf("avro: %s: %w: %s", rec, ErrIncompatible, explainIncompatible(reader, w, err))
	}
	if _, err := compile(w); err != nil {
		return "", Fingerprint{}, fmt.Errorf("avro: %s: %w", rec, err)
	}
	if fp, err = SchemaFingerprint(text); err != nil {
		return "", Fingerprint{}, err
	}
	return rec, fp, nil
}

// writerRecord parses a writer schema text and returns the name (without
// namespace) of the record of this package it is a version of.
func writerRecord(text string) (string, hamba.Schema, error) {
	s, err := parseSchema(text)
	if err != nil {
		return "", nil, fmt.Errorf("avro: writer schema: %w", err)
	}
	name := ""
	if n, ok := s.(hamba.NamedSchema); ok {
		name = n.FullName()
	}
	rec, ok := strings.CutPrefix(name, namespace+".")
	if !ok || recordOfName(rec) == "" {
		return "", nil, fmt.Errorf("avro: writer schema %q is none of the %s records (%s, %s, %s, %s)",
			name, namespace, RecordOrderEvent, RecordStatusChange, RecordRejection, RecordOrderState)
	}
	return rec, s, nil
}

func recordOfName(name string) string {
	switch name {
	case RecordOrderEvent, RecordStatusChange, RecordRejection, RecordOrderState:
		return name
	}
	return ""
}
