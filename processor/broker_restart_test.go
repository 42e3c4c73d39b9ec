package processor_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
)

// TestBrokerRestart stops the (single-node) broker mid-stream with SIGTERM
// and starts it again: the processor recovers by itself, and the outputs
// are still exactly once.
func TestBrokerRestart(t *testing.T) {
	lc := kafkatest.StartLocal(t, 1)
	e := newEnv(t, &lc.Cluster, 6)
	items := workload.Generate(workload.Options{Seed: 41, Orders: 3000})
	half := len(items) / 2
	e.produce(t, items[:half])
	p, stop := run(t, e.instance(t, "a", t.TempDir()))
	e.waitOutputs(t, half/2, time.Minute)

	lc.Stop(t, 1)
	t.Log("broker stopped")
	time.Sleep(5 * time.Second)
	lc.Start(t, 1)
	t.Log("broker started again")

	e.produce(t, items[half:])
	e.waitOutputs(t, len(items), 3*time.Minute)
	if err := stop(); err != nil {
		t.Fatalf("Run ended with %v", err)
	}
	checkExactlyOnce(t, items, e.readOutputs(t))
	e.checkChangelog(t, items)
	t.Logf("stats: %+v", p.Stats())
}
