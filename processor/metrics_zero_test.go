package processor_test

import (
	"testing"

	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/topology"
)

// TestCountersExistAtZeroFromTheStart: before any event, /metrics has
// transitions_total for every edge of the machine and rejections_total for
// every reason it can give, at 0, so that rate() sees the first events.
func TestCountersExistAtZeroFromTheStart(t *testing.T) {
	cfg := processor.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.StateDir = t.TempDir()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := p.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]map[[2]string]float64{}
	for _, f := range mfs {
		for _, m := range f.GetMetric() {
			var key [2]string
			for i, l := range m.GetLabel() {
				if i < 2 {
					key[i] = l.GetValue()
				}
			}
			if series[f.GetName()] == nil {
				series[f.GetName()] = map[[2]string]float64{}
			}
			series[f.GetName()][key] = m.GetCounter().GetValue()
		}
	}
	m := topology.Default()
	for _, e := range m.Edges() {
		from := e.From
		if from == "" {
			from = "none"
		}
		// Labels are sorted by name: from, to.
		if v, ok := series["orderflow_transitions_total"][[2]string{from, e.To}]; !ok || v != 0 {
			t.Errorf("transitions_total{from=%q,to=%q}: %v (present %v), want 0", from, e.To, v, ok)
		}
	}
	for _, r := range m.Reasons() {
		if v, ok := series["orderflow_rejections_total"][[2]string{r}]; !ok || v != 0 {
			t.Errorf("rejections_total{reason=%q}: %v (present %v), want 0", r, v, ok)
		}
	}
	if n := len(series["orderflow_rejections_total"]); n != len(m.Reasons()) {
		t.Errorf("%d rejections_total series, want %d", n, len(m.Reasons()))
	}
}
