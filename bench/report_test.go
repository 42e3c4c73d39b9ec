package bench

import (
	"math"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/bench/internal/machine"
)

// TestSetThroughputMedian checks that a throughput figure is its median
// round (the lower middle one of an even count), with that round's CPU,
// and that its note gives every round and the best, and what orderflow's
// store flushed and compacted in the window.
func TestSetThroughputMedian(t *testing.T) {
	r := newReport(Options{})
	median := &machine.CPUUse{}
	r.setThroughput("ceiling_plain",
		throughput{records: 10, rate: 477}, throughput{records: 10, rate: 979},
		throughput{records: 10, rate: 758}, throughput{records: 10, rate: 677, cpu: median})
	f := r.figures["ceiling_plain"]
	if f.Value != 677 || f.CPU != median || r.throughputs["ceiling_plain"].rate != 677 {
		t.Fatalf("figure %v (cpu %p), want the median round 677 (cpu %p)", f.Value, f.CPU, median)
	}
	if want := "median of 4 rounds (477, 979, 758, 677 records/s; best 979)"; !strings.HasPrefix(f.Note, want) {
		t.Fatalf("note %q, want it to start with %q", f.Note, want)
	}
	if strings.Contains(f.Note, "state store") {
		t.Fatalf("a ceiling's note describes a state store: %q", f.Note)
	}
	at0 := storeWork{flushes: 3, flushedBytes: 10 << 20, compactions: 1, compactedBytes: 1 << 20}
	at1 := storeWork{flushes: 4, flushedBytes: 34 << 20, compactions: 1, compactedBytes: 1 << 20}
	r.setThroughput("orderflow_alos", throughput{records: 10, rate: 5, store: at1.sub(at0)})
	f = r.figures["orderflow_alos"]
	if f.Value != 5 || strings.Contains(f.Note, "median of") {
		t.Fatalf("one round: %v %q", f.Value, f.Note)
	}
	if want := "its state store in the measured window: 1 flush(es) writing 24.0 MiB, 0 compaction(s) writing 0.0 MiB"; !strings.Contains(f.Note, want) {
		t.Fatalf("note %q, want it to contain %q", f.Note, want)
	}
}

// TestNotePaired checks the verdict's ratio: the median of the per-round
// ratios against the ceiling's rounds beside them (not the ratio of the
// medians), with the best rounds' ratio in the note, and that unequal or
// single rounds change nothing.
func TestNotePaired(t *testing.T) {
	r := newReport(Options{})
	of := []throughput{{records: 10, rate: 764}, {records: 10, rate: 760}, {records: 10, rate: 725}}
	ce := []throughput{{records: 10, rate: 972}, {records: 10, rate: 1063}, {records: 10, rate: 701}}
	r.setThroughput("orderflow_alos", of...)
	r.setThroughput("ceiling_plain", ce...)
	r.notePaired("orderflow_alos", of, ce)
	if want := "; each round against the ceiling's beside it: 0.79, 0.71, 1.03 (median 0.79, the verdict's ratio); best round against the ceiling's best: 0.72"; !strings.HasSuffix(r.figures["orderflow_alos"].Note, want) {
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
	r.finish()
	f := r.figures["orderflow_alos"]
	// The medians' ratio would be 760/972 = 0.78.
	if math.Abs(f.Ratio-764.0/972) > 1e-9 || f.Met == nil || !*f.Met {
		t.Fatalf("ratio %v (met %v), want the median paired ratio %v, met (>= 0.70)", f.Ratio, f.Met, 764.0/972)
	}
}

// TestHistogramQuantiles checks the breakdown's reading of orderflow's
// histograms: a snapshot less an earlier one, its mean and its p99 (the
// bound of the bucket holding it; the last bound past them all).
func TestHistogramQuantiles(t *testing.T) {
	before := histograms{"h": {count: 10, sum: 0.010, bounds: []float64{0.001, 0.002, 0.005}, buckets: []uint64{10, 10, 10}}}
	after := histograms{"h": {count: 110, sum: 0.210, bounds: []float64{0.001, 0.002, 0.005}, buckets: []uint64{10, 108, 110}}}
	q := after.sub(before).quantiles("h")
	if math.Abs(q.Mean-2) > 1e-9 || q.P99 != 5 {
		t.Fatalf("mean %v p99 %v, want 2 ms and 5 ms", q.Mean, q.P99)
	}
	past := histograms{"h": {count: 100, sum: 1, bounds: []float64{0.001}, buckets: []uint64{50}}}
	if q := past.quantiles("h"); q.P99 != 1 {
		t.Fatalf("p99 past the last bound: %v, want the last bound, 1 ms", q.P99)
	}
	if q := after.quantiles("missing"); q != (Quantiles{}) {
		t.Fatalf("a missing histogram: %+v", q)
	}
}
