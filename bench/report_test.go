package bench

import (
	"strings"
	"testing"

	"github.com/orderflow/orderflow/bench/internal/machine"
)

// TestSetThroughputBest checks that a throughput figure is its best round,
// with that round's CPU, and that its note gives every round and the
// median (the lower middle one of an even count), and what orderflow's
// store flushed and compacted in the window.
func TestSetThroughputBest(t *testing.T) {
	r := newReport(Options{})
	best := &machine.CPUUse{}
	r.setThroughput("ceiling_plain",
		throughput{records: 10, rate: 477}, throughput{records: 10, rate: 979, cpu: best},
		throughput{records: 10, rate: 758}, throughput{records: 10, rate: 677})
	f := r.figures["ceiling_plain"]
	if f.Value != 979 || f.CPU != best || r.throughputs["ceiling_plain"].rate != 979 {
		t.Fatalf("figure %v (cpu %p), want the best round 979 (cpu %p)", f.Value, f.CPU, best)
	}
	if want := "best of 4 rounds (477, 979, 758, 677 records/s; median 677)"; !strings.HasPrefix(f.Note, want) {
		t.Fatalf("note %q, want it to start with %q", f.Note, want)
	}
	if strings.Contains(f.Note, "state store") {
		t.Fatalf("a ceiling's note describes a state store: %q", f.Note)
	}
	at0 := storeWork{flushes: 3, flushedBytes: 10 << 20, compactions: 1, compactedBytes: 1 << 20}
	at1 := storeWork{flushes: 4, flushedBytes: 34 << 20, compactions: 1, compactedBytes: 1 << 20}
	r.setThroughput("orderflow_alos", throughput{records: 10, rate: 5, store: at1.sub(at0)})
	f = r.figures["orderflow_alos"]
	if f.Value != 5 || strings.Contains(f.Note, "best of") {
		t.Fatalf("one round: %v %q", f.Value, f.Note)
	}
	if want := "its state store in the measured window: 1 flush(es) writing 24.0 MiB, 0 compaction(s) writing 0.0 MiB"; !strings.Contains(f.Note, want) {
		t.Fatalf("note %q, want it to contain %q", f.Note, want)
	}
}

// TestNotePaired checks the per-round ratios against the ceiling's rounds
// beside them, and that unequal or single rounds add nothing.
func TestNotePaired(t *testing.T) {
	r := newReport(Options{})
	of := []throughput{{records: 10, rate: 764}, {records: 10, rate: 760}, {records: 10, rate: 725}}
	ce := []throughput{{records: 10, rate: 972}, {records: 10, rate: 1063}, {records: 10, rate: 701}}
	r.setThroughput("orderflow_alos", of...)
	r.notePaired("orderflow_alos", of, ce)
	if want := "; each round against the ceiling's beside it: 0.79, 0.71, 1.03 (median 0.79)"; !strings.HasSuffix(r.figures["orderflow_alos"].Note, want) {
		t.Fatalf("note %q, want it to end with %q", r.figures["orderflow_alos"].Note, want)
	}
	r.setThroughput("orderflow_eos", of...)
	before := r.figures["orderflow_eos"].Note
	r.notePaired("orderflow_eos", of, ce[:2])
	r.notePaired("orderflow_eos", of[:1], ce[:1])
	r.notePaired("orderflow_missing", of, ce)
	if r.figures["orderflow_eos"].Note != before {
		t.Fatalf("unpaired rounds changed the note: %q", r.figures["orderflow_eos"].Note)
	}
}
