package processor_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
)

// TestEndIdleBatches checks that Config.EndIdleBatches ends a batch once
// the fetched input runs out: with a commit interval far longer than the
// wait for the outputs, they are committed only if the batches end
// without it.
func TestEndIdleBatches(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		t.Parallel()
		e := newEnv(t, c, 3)
		cfg := e.instance(t, "a", t.TempDir())
		cfg.CommitInterval = 5 * time.Minute
		cfg.TransactionTimeout = 10 * time.Minute
		cfg.EndIdleBatches = true
		p, stop := run(t, cfg)
		items := workload.Generate(workload.Options{Seed: 31, Orders: 30})
		e.produce(t, items)
		o := e.waitOutputs(t, len(items), time.Minute)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, items, o)
		if st := p.Stats(); st.Batches < 1 {
			t.Fatalf("%d committed batches", st.Batches)
		}
	})
}
