package bench

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clientCounts counts, through franz-go's hooks, what a run's clients
// asked of the broker: requests by kind, and the record batches produced
// and fetched. Many small batches cost the broker per batch what few
// large ones would not.
type clientCounts struct {
	produceReqs, fetchReqs, otherReqs atomic.Int64
	prodBatches, prodRecords          atomic.Int64
	fetchBatches, fetchRecords        atomic.Int64
}

func (c *clientCounts) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	switch key {
	case kmsg.Produce.Int16():
		c.produceReqs.Add(1)
	case kmsg.Fetch.Int16():
		c.fetchReqs.Add(1)
	default:
		c.otherReqs.Add(1)
	}
}

func (c *clientCounts) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	c.prodBatches.Add(1)
	c.prodRecords.Add(int64(m.NumRecords))
}

func (c *clientCounts) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	c.fetchBatches.Add(1)
	c.fetchRecords.Add(int64(m.NumRecords))
}

func (c *clientCounts) String() string {
	per := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	return fmt.Sprintf("%d produce requests, %d fetch requests, %d others; %d batches produced (%.0f records each), %d fetched (%.0f records each)",
		c.produceReqs.Load(), c.fetchReqs.Load(), c.otherReqs.Load(),
		c.prodBatches.Load(), per(c.prodRecords.Load(), c.prodBatches.Load()),
		c.fetchBatches.Load(), per(c.fetchRecords.Load(), c.fetchBatches.Load()))
}

var (
	_ kgo.HookBrokerWrite         = (*clientCounts)(nil)
	_ kgo.HookProduceBatchWritten = (*clientCounts)(nil)
	_ kgo.HookFetchBatchRead      = (*clientCounts)(nil)
)
