package avro

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A directory of writer schemas: each is checked, the codec made with them
// reads what they wrote, and the first bad one is named with its problem.
func TestReadWriterSchemas(t *testing.T) {
	dir := t.TempDir()
	v2 := readFile(t, "testdata/order_event.v2.avsc")
	p := writeFile(t, dir, "order_event.v2.avsc", v2)
	writeFile(t, dir, "README.txt", "not a schema")
	got, err := ReadWriterSchemas(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := SchemaFingerprint(v2)
	if len(got) != 1 || got[0].Path != p || got[0].Record != RecordOrderEvent || got[0].Fingerprint != want || got[0].Text != v2 {
		t.Fatalf("got %+v", got)
	}

	// Incompatible: the error names the file, the record and the field.
	bad := writeFile(t, dir, "order_event.bad.avsc", readFile(t, "testdata/order_event.incompatible.avsc"))
	_, err = ReadWriterSchemas(dir)
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `"sequence"`) {
		t.Fatalf("incompatible file: err %v, want ErrIncompatible naming %s and sequence", err, bad)
	}
	os.Remove(bad)

	// A record orderflow does not have, and a file that is not a schema.
	writeFile(t, dir, "payment.avsc", `{"type":"record","name":"Payment","namespace":"other","fields":[]}`)
	if _, err = ReadWriterSchemas(dir); err == nil || !strings.Contains(err.Error(), "payment.avsc") || !strings.Contains(err.Error(), "other.Payment") {
		t.Fatalf("foreign record: err %v", err)
	}
	os.Remove(filepath.Join(dir, "payment.avsc"))
	writeFile(t, dir, "broken.avsc", `{"type":`)
	if _, err = ReadWriterSchemas(dir); err == nil || !strings.Contains(err.Error(), "broken.avsc") {
		t.Fatalf("unparsable file: err %v", err)
	}

	if _, err := ReadWriterSchemas(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing directory: no error")
	}
}
