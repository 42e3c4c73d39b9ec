package processor_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if js := os.Getenv(childEnv); js != "" {
		os.Exit(runChild(js))
	}
	goleak.VerifyTestMain(m)
}

// TestEndToEnd runs a generated stream through one instance: per event, the
// outputs equal replay's; malformed records are in the DLQ with headers; the
// changelog's final states equal replay's.
func TestEndToEnd(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		orders := 10000
		if !c.Real || testing.Short() {
			orders = 2000
		}
		e := newEnv(t, c, 6)
		items := workload.Generate(workload.Options{Seed: 11, Orders: orders})
		e.produce(t, items)
		p, stop := run(t, e.instance(t, "a", t.TempDir()))
		o := e.waitOutputs(t, len(items), 3*time.Minute)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, items, o)
		e.checkChangelog(t, items)
		e.checkTimestamps(t, o)
		for _, r := range o.dlq {
			h := headerMap(r)
			if h[processor.HeaderError] == "" || h[processor.HeaderSourceTopic] != e.cfg.Topics.Events {
				t.Fatalf("dead letter without error/source headers: %v", h)
			}
			if _, err := strconv.Atoi(h[processor.HeaderSourceOffset]); err != nil {
				t.Fatalf("dead letter source offset %q: %v", h[processor.HeaderSourceOffset], err)
			}
		}
		st := p.Stats()
		t.Logf("%d orders, %d events: %+v", orders, len(items), st)
		if st.Events != int64(len(items)) {
			t.Fatalf("stats count %d events, want %d", st.Events, len(items))
		}
	})
}

// TestEndToEndThreads is TestEndToEnd with three threads in one instance:
// the same outcomes, one store.
func TestEndToEndThreads(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 6)
		items := workload.Generate(workload.Options{Seed: 12, Orders: 2000})
		e.produce(t, items)
		cfg := e.instance(t, "a", t.TempDir())
		cfg.Threads = 3
		p, stop := run(t, cfg)
		o := e.waitOutputs(t, len(items), 3*time.Minute)
		if !p.Ready() {
			t.Error("Ready() is false with all threads running and every partition restored")
		}
		if n := len(p.Assigned()); n != 6 {
			t.Errorf("the threads own %d partitions together, want 6", n)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, items, o)
		e.checkChangelog(t, items)
	})
}

// TestReadyAfterJoin checks that an instance is not ready before its
// threads have joined the group. With one thread, the group's only
// member, the first time Ready reports true the instance owns every
// partition. With two, it owns some: a cooperative rebalance may still be
// moving one from the first thread to the second, which is no reason to
// be unready.
func TestReadyAfterJoin(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		for _, threads := range []int{1, 2} {
			e := newEnv(t, c, 3)
			e.cfg.AppID += strconv.Itoa(threads)
			cfg := e.instance(t, "a", t.TempDir())
			cfg.Threads = threads
			p, stop := run(t, cfg)
			deadline := time.Now().Add(time.Minute)
			for !p.Ready() {
				if time.Now().After(deadline) {
					t.Fatalf("%d thread(s): not ready after a minute", threads)
				}
				time.Sleep(time.Millisecond)
			}
			n := len(p.Assigned())
			if threads == 1 && n != 3 || n == 0 {
				t.Errorf("%d thread(s): ready owning %d of 3 partitions", threads, n)
			}
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
		}
	})
}

// TestConsumerLagMetric: the processor's own metrics give the consumer lag
// of every partition it owns, with no HTTP API running, and the lag reaches
// 0 once the batches are committed.
func TestConsumerLagMetric(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 3)
		items := workload.Generate(workload.Options{Seed: 21, Orders: 200})
		e.produce(t, items)
		p, stop := run(t, e.instance(t, "a", t.TempDir()))
		e.waitOutputs(t, len(items), 3*time.Minute)
		var series int
		var sum float64
		deadline := time.Now().Add(time.Minute)
		for {
			families, err := p.Gatherer().Gather()
			if err != nil {
				t.Fatal(err)
			}
			series, sum = 0, 0
			for _, f := range families {
				if f.GetName() != "orderflow_consumer_lag" {
					continue
				}
				for _, m := range f.GetMetric() {
					series++
					sum += m.GetGauge().GetValue()
				}
			}
			if series == 3 && sum == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("orderflow_consumer_lag: %d series summing to %v after a minute, want 3 summing to 0", series, sum)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}
