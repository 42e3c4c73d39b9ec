package bench

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
)

// tinyOptions are the options of a tiny run against the real broker, in a
// temporary work dir, logging into the returned builder.
func tinyOptions(t *testing.T, prefix string) (Options, *strings.Builder) {
	c := kafkatest.Real(t)
	log := new(strings.Builder)
	return Options{
		Brokers:      c.Brokers,
		Tiny:         true,
		WorkDir:      t.TempDir(),
		TopicPrefix:  kafkatest.Name(t, prefix),
		KafkaVersion: KafkaVersionFromPom(filepath.Join("..")),
		Log:          log,
	}, log
}

// TestTiny runs the whole harness in tiny mode against the real broker, so
// it cannot rot, and checks the report is complete: every figure present
// and positive, the files written. It asserts no timing.
func TestTiny(t *testing.T) {
	o, log := tinyOptions(t, "bench")
	work := o.WorkDir
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if m := rep.Missing(); len(m) > 0 {
		t.Errorf("figures missing or not positive: %v\n%s", m, rep.table())
	}
	for _, f := range rep.Figures {
		if f.Baseline != "" && !(f.Ratio > 0) {
			t.Errorf("%s: ratio %v of %s", f.Key, f.Ratio, f.Baseline)
		}
	}
	for _, k := range []string{"orderflow_eos", "orderflow_alos", "latency_p99", "lowlat_eos_p99_10", "lowlat_alos_p99_10", "lowlat_eos_p99_30", "restore", "rss_peak"} {
		found := false
		for _, f := range rep.Figures {
			found = found || (f.Key == k && f.Met != nil && f.Target != "")
		}
		if !found {
			t.Errorf("%s: no target verdict", k)
		}
	}
	for _, f := range rep.Figures {
		if strings.HasPrefix(f.Key, "orderflow_") && !strings.Contains(f.Note, "its state store in the measured window: ") {
			t.Errorf("%s: the note does not give the store's flushes and compactions: %q", f.Key, f.Note)
		}
	}
	for _, c := range rep.Checks {
		if strings.HasPrefix(c, "eos:") && !strings.Contains(c, "as expected") {
			t.Errorf("exactly_once counts: %s", c)
		}
	}
	// Tiny mode warms the broker up once (not to a settled JIT: that
	// takes minutes), and the report says so.
	if len(rep.Warmup) != 1 || rep.Warmup[0].Seconds <= 0 {
		t.Errorf("warm-up passes: %+v", rep.Warmup)
	}
	if md := rep.Markdown(); !strings.Contains(md, "Broker warm-up: 1 pass(es)") {
		t.Errorf("the report does not describe the warm-up:\n%s", md)
	}
	if rep.Machine.Cores == 0 || rep.Machine.MemoryGiB == 0 || rep.Machine.KafkaVersion == "" {
		t.Errorf("machine incomplete: %+v", rep.Machine)
	}
	// The latency curve: every setting at every load, orderflow's and the
	// ceiling's latencies, and where orderflow's time went.
	if want := len(curveLoads) * 3; len(rep.Curve) != want {
		t.Errorf("%d curve points, want %d", len(rep.Curve), want)
	}
	for _, p := range rep.Curve {
		if !(p.Orderflow.P99 > 0) || !(p.Ceiling.P99 > 0) || p.Breakdown == nil || p.Breakdown.Batches == 0 || !(p.Breakdown.End.Mean > 0) {
			t.Errorf("curve point %s at %.0f%%: %+v", p.Setting.Name, 100*p.Load, p)
		}
	}
	files, err := rep.WriteFiles(work)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || !strings.HasSuffix(files[2], "-latency.png") {
		t.Errorf("wrote %v", files)
	}
	if md := rep.Markdown(); !strings.Contains(md, "## Latency curve") || !strings.Contains(md, "-latency.png)") {
		t.Errorf("the report lacks the latency curve:\n%s", md)
	}
}
