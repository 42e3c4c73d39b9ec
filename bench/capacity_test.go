package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCapacityTiny runs the capacity measurements in tiny mode against the
// real broker, so they cannot rot: every measured input is present and
// positive, the scaling run has its three runs with a prediction beside
// each, and the document and JSON are written. It asserts no timing.
func TestCapacityTiny(t *testing.T) {
	o, log := tinyOptions(t, "capacity")
	o.WarmupPasses = -1 // TestTiny covers the warm-up
	work := o.WorkDir
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	capa, err := RunCapacity(ctx, o)
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	in := capa.Inputs
	for name, v := range map[string]float64{
		"R_eos": in.EOS.PerCore, "R_alos": in.ALOS.PerCore, "b_in": in.InputBytesPerEvent, "b_ev": in.BrokerBytesPerEvent,
		"b_tr": in.ChangelogBytesPerTransition, "b_cl": in.ChangelogBytesPerOrder, "b_open": in.StoreBytesPerOpenOrder,
		"b_closed": in.StoreBytesPerClosedOrder, "b_st": in.StoreBytesPerOrder, "R_restore": in.RestorePerCore,
	} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive figure", name, v)
		}
	}
	if in.BrokerBytesPerEvent <= in.InputBytesPerEvent {
		t.Errorf("broker bytes per event %v not above the input's %v: the outputs are missing", in.BrokerBytesPerEvent, in.InputBytesPerEvent)
	}
	if len(capa.Scaling) != len(capacityInstances) {
		t.Fatalf("scaling runs: %+v", capa.Scaling)
	}
	for i, r := range capa.Scaling {
		if r.Instances != capacityInstances[i] || !(r.Rate > 0) || !(r.Predicted > 0) || !(r.Ratio > 0) {
			t.Errorf("scaling run %d: %+v", i, r)
		}
	}
	for _, ch := range capa.Checks {
		if strings.HasPrefix(ch, "cap-eos-") && !strings.Contains(ch, "as expected") {
			t.Errorf("exactly_once counts: %s", ch)
		}
	}
	md := capa.Markdown()
	for _, want := range []string{"`uptime` at the start: `", "## Measured inputs", "## Four tiers", "| 4 | 10.0 M |",
		"## Where the model breaks", "## What the operator does at each tier", "## Scaling run on this machine", "| 4 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks %q:\n%s", want, md)
		}
	}
	files, err := capa.WriteFiles(filepath.Join(work, "docs", "capacity.md"), work)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestCapacityPlan checks the model's arithmetic on fixed inputs.
func TestCapacityPlan(t *testing.T) {
	in := CapacityInput{
		EOS:                    PerCore{PerCore: 100_000, BrokerUsPerEvent: 2},
		BrokerBytesPerEvent:    500,
		ChangelogBytesPerOrder: 100,
		StoreBytesPerOrder:     200,
		RestorePerCore:         100_000,
	}
	// Tier 3: 200,000 events/s need 4 cores at 50%; 2 threads per
	// instance; 1e9 orders restore at 200,000/s per instance, so 17
	// instances keep a restore under 300 s.
	p := in.plan(Tiers[2])
	want := TierPlan{
		Tier: Tiers[2], EventsPerS: 200_000, CPUCores: 4, Orders: 1e9, Residence: 1e4,
		Threads: 2, Instances: 17, DrivenBy: "restore", Cores: 34, Partitions: 72,
		BrokerWriteMBps: 300, BrokerCores: 0.4, Brokers: 3, PartitionReplicas: 1080, ReplicasPerBroker: 360,
		DiskPerInstance: 1e9 * 200 / 17, ChangelogBytes: 100e9, RestoreSeconds: 1e9 / 17 / 200_000,
	}
	if p != want {
		t.Errorf("tier 3:\n got %+v\nwant %+v", p, want)
	}
	// Tier 1 is the minimum: two single-threaded instances, 12 partitions.
	if p := in.plan(Tiers[0]); p.Instances != 2 || p.Threads != 1 || p.Partitions != 12 || p.DrivenBy != "minimum" {
		t.Errorf("tier 1: %+v", p)
	}
	// The document gives the plan and the operator's step to it.
	md := (&Capacity{Inputs: in, Machine: Machine{Cores: 2}}).Markdown()
	for _, want := range []string{"| 3 | 100 k | 200 k | 100 GB | 1.0 G | 2.8 h | 4.00 | 2 | 17 | restore | 72 |", "`orderflow repartition --partitions 72`", "| 1 | 10 | 20 | 10 MB |"} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks %q:\n%s", want, md)
		}
	}
	// Without measured inputs nothing is sized.
	if p := (CapacityInput{}).plan(Tiers[3]); p.Instances != 0 || p.EventsPerS != 20e6 {
		t.Errorf("no inputs: %+v", p)
	}
}
