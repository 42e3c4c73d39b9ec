package bench

import (
	"strings"
	"testing"
)

// TestSetThroughputBest checks that a throughput figure is its best round,
// with that round's CPU, and that its note gives every round and the
// median (the lower middle one of an even count).
func TestSetThroughputBest(t *testing.T) {
	r := newReport(Options{})
	best := &CPUUse{}
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
	r.setThroughput("orderflow_alos", throughput{records: 10, rate: 5})
	if f := r.figures["orderflow_alos"]; f.Value != 5 || strings.Contains(f.Note, "best of") {
		t.Fatalf("one round: %v %q", f.Value, f.Note)
	}
}
