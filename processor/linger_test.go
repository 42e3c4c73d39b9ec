package processor_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceCounter counts the produce requests of the clients it hooks.
type produceCounter struct{ n atomic.Int64 }

func (c *produceCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && key == kmsg.Produce.Int16() {
		c.n.Add(1)
	}
}

// TestExactlyOnceSendsOutputsAtCommit checks that exactly_once holds a
// batch's outputs until the transaction ends (the session client's linger,
// internal/ksession): each committed batch reaches each broker in one
// produce request, not in a stream of small ones while the batch is
// processed. The batches are 2,000 input records, handed to the client 128
// at a time; without the linger the client sends whenever it has records
// and no request in flight.
//
// The first batch is left out: the client learns each output topic's
// partitions when it first produces to it, and sends each topic's records
// as soon as it knows them while that batch ends.
func TestExactlyOnceSendsOutputsAtCommit(t *testing.T) {
	kafkatest.Both(t, func(t *testing.T, c *kafkatest.Cluster) {
		e := newEnv(t, c, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		md, err := c.Admin(t).BrokerMetadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		brokers := int64(len(md.Brokers))

		var produced produceCounter
		cfg := e.instance(t, "a", t.TempDir())
		// A long interval: a batch ends at MaxBatchRecords or when the input
		// runs out, in kfake and a real broker alike.
		cfg.CommitInterval = 2 * time.Second
		cfg.MaxBatchRecords = 2000
		cfg.KafkaOpts = append(cfg.KafkaOpts, kgo.WithHooks(&produced))
		p, stop := run(t, cfg)

		first := workload.Generate(workload.Options{Seed: 21, Orders: 50})
		e.produce(t, first)
		e.waitOutputs(t, len(first), 3*time.Minute)
		st0, n0 := p.Stats(), produced.n.Load()

		items := workload.Generate(workload.Options{Seed: 22, Orders: 1500})
		e.produce(t, items)
		o := e.waitOutputs(t, len(first)+len(items), 3*time.Minute)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, append(first, items...), o)
		st := p.Stats()
		batches, n := st.Batches+st.Aborts-st0.Batches-st0.Aborts, produced.n.Load()-n0
		t.Logf("after the first %d batch(es): %d events in %d batches; %d produce requests to %d broker(s)", st0.Batches, len(items), batches, n, brokers)
		if batches < 2 {
			t.Fatalf("%d batches: the test needs several", batches)
		}
		if n > batches*brokers {
			t.Fatalf("%d produce requests for %d batches on %d broker(s): want at most one per batch and broker", n, batches, brokers)
		}
	})
}
